"""Prometheus metrics of one service instance (its own registry)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
)

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bandit_router_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("bandit_router_http_request_duration_seconds",
                                 "HTTP request latency", ["route"], registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1,
                                          2.5, 5))
        self.decisions = Counter("bandit_router_decisions_total", "decisions by model",
                                 ["model"], registry=self.registry)
        self.rewards = Counter("bandit_router_rewards_total", "rewards stored, by outcome",
                               ["outcome"], registry=self.registry)
        self.quality = Summary("bandit_router_reward_quality",
                               "quality of the rewards stored (a failed call counts as 0)",
                               registry=self.registry)
        self.spend = Counter("bandit_router_spend_usd_total", "cost reported in rewards",
                             ["model"], registry=self.registry)
        self.policy_version = Gauge("bandit_router_policy_version", "rewards learned",
                                    registry=self.registry)
        self.budget_used = Gauge("bandit_router_budget_used_usd",
                                 "spend plus reservations in the budget's current window",
                                 ["scope", "window"], registry=self.registry)
        self.budget_limit = Gauge("bandit_router_budget_limit_usd", "the budget's limit",
                                  ["scope", "window"], registry=self.registry)
        self.deployment_healthy = Gauge("bandit_router_deployment_healthy",
                                        "1 unless the deployment is cooling down",
                                        ["deployment", "model"], registry=self.registry)
        self.learn_lag = Gauge("bandit_router_learning_lag_rewards",
                               "rewards stored but not yet learned", registry=self.registry)
        self.select_seconds = Histogram(
            "bandit_router_select_seconds",
            "a decision's time in the router: embedding the task, and the rest (routing)",
            ["part"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))

    def reward(self, *, error: str | None, quality: float, model: str, cost_usd: float) -> None:
        """Count one stored reward: its outcome, its quality and its spend."""
        self.rewards.labels(error or "ok").inc()
        self.quality.observe(quality)
        self.spend.labels(model).inc(cost_usd)

    def observe_select(self, embed_s: float, route_s: float) -> None:
        """One decision's time: embedding its task, and the rest of the routing."""
        self.select_seconds.labels("embed").observe(embed_s)
        self.select_seconds.labels("route").observe(route_s)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

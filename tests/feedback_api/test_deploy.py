"""deploy/: the Prometheus rules and the Grafana dashboard parse, and every metric they use is
one the service's /metrics serves (read from a real server after real traffic)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from .conftest import Server

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "bandit-router-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "bandit-router-dashboard.json"
_SAMPLES = {"counter": ("_total", "_created"), "gauge": ("",), "summary": ("_sum", "_count"),
            "histogram": ("_bucket", "_sum", "_count")}


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    rules = [r for group in doc["groups"] for r in group["rules"]]
    assert len(rules) >= 6
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"].startswith("BanditRouter") and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    names = {r["alert"] for r in rules}
    assert {"BanditRouterErrorRate", "BanditRouterQualityDrop",
            "BanditRouterLearningLag"} <= names  # beyond budgets, as issue #18 asks
    return [r["expr"] for r in rules]


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] == "bandit-router" and doc["panels"]
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def _served(server: Server) -> set[str]:
    auth = {"Authorization": f"Bearer {server.client_key}"}
    for reward in ({"quality": 0.7}, {"error": "timeout"}):  # real traffic, both outcomes
        d = httpx.post(f"{server.url}/v1/select", json={"task": "a question"}, headers=auth)
        assert httpx.post(f"{server.url}/v1/events/{d.json()['event_id']}/reward",
                          json=reward, headers=auth).status_code == 200
    text = httpx.get(f"{server.url}/metrics",
                     headers={"Authorization": f"Bearer {server.admin_key}"}).text
    # the samples present, and every family's sample names (a labelled family without
    # samples yet, a budget's gauge say, still declares its type)
    served = set(re.findall(r"^(bandit_router_\w+)[{ ]", text, re.M))
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        base = name.removesuffix("_total") if kind == "counter" else name
        served |= {base + suffix for suffix in _SAMPLES.get(kind, ("",))}
    assert 'bandit_router_rewards_total{outcome="timeout"}' in text
    assert "bandit_router_reward_quality_count" in text
    return served


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_metric_used_is_served(server: Server, source: str) -> None:
    exprs = _rule_exprs() if source == "rules" else _dashboard_exprs()
    used = {m for e in exprs for m in re.findall(r"\bbandit_router_[a-z_]+", e)}
    assert len(used) >= 6
    missing = used - _served(server)
    assert not missing, f"{source} uses metrics /metrics does not serve: {sorted(missing)}"

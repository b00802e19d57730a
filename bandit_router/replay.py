"""Replay a routing dataset through the real :class:`Router` with bandit feedback.

Each round the router selects a model for the task; only that model's outcome (quality, cost,
latency, output tokens) is revealed and rewarded. The order of tasks and every exploration
draw are fixed by ``seed`` (events are named ``<dataset>-<seed>-<round>``), so a replay is
deterministic. Baselines are computed on the same tasks in the same order.

>>> from bandit_router.datasets import synthetic_dataset
>>> from bandit_router.simulation import HashEmbedder
>>> ds = synthetic_dataset(300, seed=1)
>>> result = replay(ds, seed=0, cost_weight=50.0, embedder=HashEmbedder())
>>> s = result.summary()
>>> s["router"]["reward"] > s["random"]["reward"]
True
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._config import PolicyConfig, RouterConfig
from ._embedding import Embedder
from ._router import Router
from .datasets import PrecomputedEmbedder, RoutingDataset

__all__ = ["ReplayResult", "baselines", "hull_quality", "replay", "zero_router_hull"]

Array = npt.NDArray[np.float64]


def zero_router_hull(costs: Sequence[float], qualities: Sequence[float]) -> list[tuple[float,
                                                                                      float]]:
    """RouterBench's zero router: the non-decreasing upper convex hull of the single models
    in the cost-quality plane (any mix of two models is reachable by routing at random)."""
    pts = sorted(zip(costs, qualities, strict=True))
    hull: list[tuple[float, float]] = []
    for c, q in pts:
        if hull and q <= hull[-1][1]:  # costs more, no better: never on the frontier
            continue
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            if (q2 - q1) * (c - c1) <= (q - q1) * (c2 - c1):  # hull[-1] under the chord
                hull.pop()
            else:
                break
        hull.append((c, q))
    return hull


def hull_quality(hull: Sequence[tuple[float, float]], cost: float) -> float:
    """The zero router's quality at ``cost`` (flat past the most expensive point)."""
    if cost <= hull[0][0]:
        return hull[0][1]
    for (c1, q1), (c2, q2) in itertools.pairwise(hull):
        if cost <= c2:
            return q1 + (q2 - q1) * (cost - c1) / (c2 - c1)
    return hull[-1][1]


def baselines(dataset: RoutingDataset, rows: npt.NDArray[np.int64],
              cost_weight: float) -> dict[str, dict[str, float]]:
    """Mean quality, cost and reward of fixed strategies on ``rows``."""
    q, c = dataset.quality[rows], dataset.cost[rows]
    r = q - cost_weight * c

    def row(quality: float, cost: float) -> dict[str, float]:
        return {"quality": quality, "cost": cost, "reward": quality - cost_weight * cost}

    out = {"random": row(float(q.mean()), float(c.mean()))}
    means_q, means_c = q.mean(axis=0), c.mean(axis=0)
    for j, name in enumerate(dataset.models):
        out[f"always {name}"] = row(float(means_q[j]), float(means_c[j]))
    cheapest = int(np.argmin(dataset.cost.mean(axis=0)))
    strongest = int(np.argmax(dataset.quality.mean(axis=0)))
    out["cheapest"] = out[f"always {dataset.models[cheapest]}"]
    out["strongest"] = out[f"always {dataset.models[strongest]}"]
    # oracle: the best reward per task; among equals, the cheapest
    best = np.argmax(r - 1e-12 * c, axis=1)
    idx = np.arange(len(rows))
    out["oracle"] = row(float(q[idx, best].mean()), float(c[idx, best].mean()))
    return out


@dataclass
class ReplayResult:
    dataset: RoutingDataset
    seed: int
    cost_weight: float
    order: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.int64]
    probability: Array
    seconds: float

    @property
    def quality(self) -> Array:
        return self.dataset.quality[self.order, self.chosen]

    @property
    def cost(self) -> Array:
        return self.dataset.cost[self.order, self.chosen]

    @property
    def rounds_per_s(self) -> float:
        return len(self.order) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self, part: slice = slice(None)) -> dict[str, Any]:
        """Router and baselines on the rounds in ``part`` (e.g. ``slice(n // 2, None)``)."""
        rows = self.order[part]
        q, c = float(self.quality[part].mean()), float(self.cost[part].mean())
        lam = self.cost_weight
        out: dict[str, Any] = {"router": {"quality": q, "cost": c, "reward": q - lam * c}}
        out.update(baselines(self.dataset, rows, lam))
        strongest = out["strongest"]
        oracle_reward = self.dataset.quality[rows] - lam * self.dataset.cost[rows]
        oracle_per_round = oracle_reward.max(axis=1)
        router_per_round = self.quality[part] - lam * self.cost[part]
        hull = zero_router_hull([v["cost"] for k, v in out.items() if k.startswith("always ")],
                                [v["quality"] for k, v in out.items()
                                 if k.startswith("always ")])
        out["metrics"] = {
            "rounds": len(rows),
            "regret_per_round": float(np.mean(oracle_per_round - router_per_round)),
            "cumulative_regret": float(np.sum(oracle_per_round - router_per_round)),
            "share_of_strongest_quality": q / strongest["quality"],
            "share_of_strongest_cost": c / strongest["cost"] if strongest["cost"] else None,
            "savings_vs_strongest_usd": (strongest["cost"] - c) * len(rows),
            "zero_router_quality_at_same_cost": hull_quality(hull, c),
            "above_zero_router": q - hull_quality(hull, c),
        }
        return out

    def write_log(self, path: str | Path) -> None:
        """One CSV row per round: task, chosen model, probability, quality, cost."""
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["round", "task_id", "model", "probability", "quality", "cost_usd"])
            for k, (i, j) in enumerate(zip(self.order, self.chosen, strict=True)):
                w.writerow([k, self.dataset.task_ids[i], self.dataset.models[j],
                            f"{self.probability[k]:.6f}", self.dataset.quality[i, j],
                            self.dataset.cost[i, j]])


def replay(dataset: RoutingDataset, *, seed: int = 0, cost_weight: float = 20.0,
           policy: PolicyConfig | None = None, config: RouterConfig | None = None,
           embedder: Embedder | None = None, database_url: str = "sqlite://",
           limit: int | None = None, quality_prior: float = 0.5,
           warm_start: float = 0.0) -> ReplayResult:
    """Stream ``dataset`` in a seeded random order through a fresh router, bandit feedback
    only. Uses the dataset's precomputed embeddings when it has them and no ``embedder`` is
    given; otherwise the router's own (MiniLM by default). ``warm_start`` in [0, 1): that
    share of the tasks (drawn by the seed) is given to :meth:`Router.warm_start` with every
    model's outcome, and the rest is replayed with bandit feedback."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    n_warm = round(warm_start * len(order))
    history, order = order[:n_warm], order[n_warm:][:limit]
    if embedder is None and dataset.embeddings is not None:
        embedder = PrecomputedEmbedder(dataset.texts, dataset.embeddings)
    catalog = dataset.catalog(quality_prior=quality_prior)
    column = {key: j for j, key in enumerate(catalog.model_keys())}
    base = config or RouterConfig()
    cfg = replace(base, cost_weight=cost_weight, reward_wait_s=max(base.reward_wait_s, 1e9),
                  embedding_cache_size=0)
    router = Router(database_url=database_url, catalog=catalog, embedder=embedder,
                    policy=policy or PolicyConfig(seed=seed), config=cfg)
    chosen = np.empty(len(order), np.int64)
    probability = np.empty(len(order))
    tokens_in = dataset.input_tokens
    try:
        if n_warm:
            router.warm_start(dataset.subset(history))
        start = time.perf_counter()
        for k, i in enumerate(order):
            d = router.select(dataset.texts[i], event_id=f"{dataset.name}-{seed}-{k}",
                              input_tokens=int(tokens_in[i]) if tokens_in is not None else None)
            j = column[f"{d.provider}/{d.model}"]
            out_tokens = dataset.output_tokens
            router.reward(d.event_id, quality=float(dataset.quality[i, j]),
                          cost_usd=float(dataset.cost[i, j]),
                          latency_s=float(dataset.latency[i, j]),
                          output_tokens=int(out_tokens[i, j]) if out_tokens is not None
                          else None)
            chosen[k], probability[k] = j, d.probability
        seconds = time.perf_counter() - start
    finally:
        router.close()
    return ReplayResult(dataset=dataset, seed=seed, cost_weight=cost_weight, order=order,
                        chosen=chosen, probability=probability, seconds=seconds)

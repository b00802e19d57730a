"""Replay a routing dataset through the real :class:`Router` with bandit feedback.

Each round the router selects a model for the task; only that model's outcome (quality, cost,
latency, output tokens) is revealed and rewarded. The order of tasks and every exploration
draw are fixed by ``seed`` (events are named ``<dataset>-<seed>-<round>``), so a replay is
deterministic. Baselines are computed on the same tasks in the same order.

>>> from bandit_router.eval.datasets import synthetic_dataset
>>> from bandit_router.eval.simulation import HashEmbedder
>>> ds = synthetic_dataset(300, seed=1)
>>> result = replay(ds, seed=0, cost_weight=50.0, embedder=HashEmbedder())
>>> s = result.summary()
>>> s["router"]["reward"] > s["random"]["reward"]
True
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core._config import PolicyConfig, RouterConfig, check_seed
from ..core._embedding import Embedder
from ..core._errors import InvalidInputError
from ..core._objective import Objective
from ..core._validation import routable_task
from ..router._router import Router
from .datasets import PrecomputedEmbedder, RoutingDataset

__all__ = ["Drift", "ReplayResult", "baselines", "context_free_thompson", "hull_quality",
           "replay", "zero_router_hull"]

Array = npt.NDArray[np.float64]
log = logging.getLogger("bandit_router")


def zero_router_hull(costs: Sequence[float], qualities: Sequence[float]) -> list[tuple[float,
                                                                                      float]]:
    """RouterBench's zero router: the non-decreasing upper convex hull of the single models
    in the cost-quality plane (any mix of two models is reachable by routing at random).

    Of models at one cost only the best is on it: where every model costs the same (one
    price, or none), the hull is that model's point, not the weakest's. Costs within a
    relative ``1e-9`` of each other (sums of one price in another order) count as one.

    >>> zero_router_hull([1.0, 2.0, 4.0], [0.5, 0.8, 0.85])
    [(1.0, 0.5), (2.0, 0.8), (4.0, 0.85)]
    >>> zero_router_hull([0.0, 0.0, 0.0], [0.37, 0.49, 0.44])
    [(0.0, 0.49)]
    >>> zero_router_hull([0.1 + 0.2, 0.3], [0.8, 0.6])
    [(0.3, 0.8)]
    """
    pts: list[tuple[float, float]] = []  # cheapest first; at one cost, its best model
    for c, q in sorted(zip(costs, qualities, strict=True)):
        if pts and math.isclose(c, pts[-1][0], rel_tol=1e-9):
            pts[-1] = (pts[-1][0], max(q, pts[-1][1]))
        else:
            pts.append((c, q))
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
    objective = Objective(cost_weight)
    r = objective.reward(q, c)

    def row(quality: float, cost: float) -> dict[str, float]:
        return {"quality": quality, "cost": cost, "reward": objective.reward(quality, cost)}

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


@dataclass(frozen=True, kw_only=True)
class Drift:
    """A change in the middle of a replay: from round ``at`` on (an index, or a share of the
    rounds when below 1), ``model``'s quality moves by ``quality_delta`` (clipped to [0, 1])
    and its cost is multiplied by ``price_factor``. With ``announce`` the new price is given
    to :meth:`Router.update_pricing` at that round, as a live price update would; otherwise
    the router sees it only in the costs its rewards report."""

    model: str
    at: float = 0.5
    quality_delta: float = 0.0
    price_factor: float = 1.0
    announce: bool = True

    def start(self, rounds: int) -> int:
        """The first round the change applies to."""
        return int(self.at) if self.at >= 1 else round(self.at * rounds)

    def apply(self, quality: Array, cost: Array, column: int) -> tuple[Array, Array]:
        """The outcome matrices after the change (rows: tasks, columns: models)."""
        q, c = quality.copy(), cost.copy()
        q[:, column] = np.clip(q[:, column] + self.quality_delta, 0.0, 1.0)
        c[:, column] = c[:, column] * self.price_factor
        return q, c


def context_free_thompson(dataset: RoutingDataset, order: npt.NDArray[np.int64], *,
                          seed: int, cost_weight: float,
                          drift: Drift | None = None) -> npt.NDArray[np.int64]:
    """A standard bandit on the same stream, for reference: the model chosen each round (of
    ``order``) by Thompson sampling without context, from a Beta posterior of each model's
    quality (uniform prior; a graded quality counts as that share of a success), less
    ``cost_weight`` x the request's cost at the catalog's prices (what the router knows before
    a call: the input tokens, each model's typical output). Its draws come from ``seed``; a
    ``drift`` changes the outcomes it sees, and an announced new price its costs, from the
    same round as the replay's. What the router's context adds shows against it.

    >>> from bandit_router.eval.datasets import synthetic_dataset
    >>> ds = synthetic_dataset(400, seed=1)
    >>> order = np.random.default_rng(0).permutation(len(ds))
    >>> chosen = context_free_thompson(ds, order, seed=0, cost_weight=50.0)
    >>> late = chosen[200:]
    >>> bool(np.bincount(late).max() > 0.5 * len(late))  # it settles on a model
    True
    """
    specs = list(dataset.catalog())
    m = len(specs)
    n_in = dataset.input_token_counts()[order]
    default_out = RouterConfig().default_output_tokens
    estimate = np.stack([s.cost_usd(input_tokens=n_in,
                                    output_tokens=s.typical_output_tokens or default_out)
                         for s in specs], axis=1)
    quality = dataset.quality
    k0 = drift.start(len(order)) if drift is not None else len(order)
    rng = np.random.default_rng([seed, 7474])
    successes, failures = np.ones(m), np.ones(m)
    chosen = np.empty(len(order), np.int64)
    for k, i in enumerate(order):
        if k == k0 and drift is not None:
            column = dataset.models.index(drift.model)
            quality = drift.apply(dataset.quality, dataset.cost, column)[0]
            if drift.announce:
                estimate[k:, column] *= drift.price_factor
        j = int(np.argmax(rng.beta(successes, failures) - cost_weight * estimate[k]))
        q = float(quality[i, j])
        successes[j] += q
        failures[j] += 1.0 - q
        chosen[k] = j
    return chosen


@dataclass
class ReplayResult:
    """What a replay chose. ``quality`` and ``cost`` are what each round revealed (after a
    :class:`Drift`, the changed outcomes)."""

    dataset: RoutingDataset
    seed: int
    cost_weight: float
    order: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.int64]
    probability: Array
    seconds: float
    drift: Drift | None = None

    @property
    def quality(self) -> Array:
        return self._revealed(self.dataset.quality, 0)

    @property
    def cost(self) -> Array:
        return self._revealed(self.dataset.cost, 1)

    def _revealed(self, matrix: Array, which: int) -> Array:
        values = matrix[self.order, self.chosen]
        if self.drift is None:
            return values
        k0 = self.drift.start(len(self.order))
        changed = self.drift.apply(self.dataset.quality[self.order[k0:]],
                                   self.dataset.cost[self.order[k0:]],
                                   self.dataset.models.index(self.drift.model))[which]
        return np.concatenate([values[:k0],
                               changed[np.arange(len(changed)), self.chosen[k0:]]])

    def share(self, model: str, part: slice = slice(None)) -> float:
        """The share of the rounds in ``part`` routed to ``model``."""
        picks = self.chosen[part]
        return float(np.mean(picks == self.dataset.models.index(model))) if len(picks) else 0.0

    @cached_property
    def context_free(self) -> ReplayResult:
        """:func:`context_free_thompson` on the same stream (seeded by the replay's seed), as
        a result of its own: what a standard bandit without context did on these rounds. It
        starts cold: a warm start's labelled history is the router's alone."""
        chosen = context_free_thompson(self.dataset, self.order, seed=self.seed,
                                       cost_weight=self.cost_weight, drift=self.drift)
        return ReplayResult(dataset=self.dataset, seed=self.seed,
                            cost_weight=self.cost_weight, order=self.order, chosen=chosen,
                            probability=np.full(len(chosen), np.nan), seconds=0.0,
                            drift=self.drift)

    @property
    def rounds_per_s(self) -> float:
        return len(self.order) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self, part: slice = slice(None)) -> dict[str, Any]:
        """Router and baselines on the rounds in ``part`` (e.g. ``slice(n // 2, None)``):
        fixed strategies, the per-task oracle and a standard bandit without context
        (:attr:`context_free`)."""
        rows = self.order[part]
        q, c = float(self.quality[part].mean()), float(self.cost[part].mean())
        lam = self.cost_weight
        objective = Objective(lam)
        out: dict[str, Any] = {"router": {"quality": q, "cost": c,
                                          "reward": objective.reward(q, c)}}
        out.update(baselines(self.dataset, rows, lam))
        bandit = self.context_free
        bq, bc = float(bandit.quality[part].mean()), float(bandit.cost[part].mean())
        out["bandit without context"] = {"quality": bq, "cost": bc,
                                         "reward": objective.reward(bq, bc)}
        strongest = out["strongest"]
        oracle_reward = objective.reward(self.dataset.quality[rows], self.dataset.cost[rows])
        oracle_per_round = oracle_reward.max(axis=1)
        router_per_round = objective.reward(self.quality[part], self.cost[part])
        hull = zero_router_hull([v["cost"] for k, v in out.items() if k.startswith("always ")],
                                [v["quality"] for k, v in out.items()
                                 if k.startswith("always ")])
        out["metrics"] = {
            "rounds": len(rows),
            "regret_per_round": float(np.mean(oracle_per_round - router_per_round)),
            "cumulative_regret": float(np.sum(oracle_per_round - router_per_round)),
            "share_of_strongest_quality": (q / strongest["quality"] if strongest["quality"]
                                           else None),
            "share_of_strongest_cost": c / strongest["cost"] if strongest["cost"] else None,
            "savings_vs_strongest_usd": (strongest["cost"] - c) * len(rows),
            "zero_router_quality_at_same_cost": hull_quality(hull, c),
            "above_zero_router": q - hull_quality(hull, c),
            "bandit_without_context_above_zero_router": bq - hull_quality(hull, bc),
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


def _routable_texts(dataset: RoutingDataset, max_chars: int) -> tuple[list[str], list[int]]:
    """The texts a replay gives the router (:func:`routable_task`: what an app would send),
    the dataset's own list where every text is already routable, and the tasks left with
    nothing to route (skipped). A benchmark's table may hold a prompt longer than the
    router takes, a NUL or an empty prompt: one such row must not stop a replay."""
    texts, unroutable, changed = list(dataset.texts), [], 0
    for i, text in enumerate(dataset.texts):
        routable = routable_task(text, max_chars=max_chars)
        if routable is None:
            unroutable.append(i)
        elif routable != text:
            texts[i] = routable
            changed += 1
    if changed or unroutable:
        log.warning("%s: %d task texts cut to %d characters or cleaned of NUL or lone "
                    "surrogates, %d empty ones skipped", dataset.name, changed, max_chars,
                    len(unroutable))
        return texts, unroutable
    return dataset.texts, []


def replay(dataset: RoutingDataset, *, seed: int = 0, cost_weight: float = 20.0,
           policy: PolicyConfig | None = None, config: RouterConfig | None = None,
           embedder: Embedder | None = None, database_url: str = "sqlite://",
           limit: int | None = None, quality_prior: float = 0.5,
           warm_start: float = 0.0, drift: Drift | None = None) -> ReplayResult:
    """Stream ``dataset`` in a seeded random order through a fresh router, bandit feedback
    only. Uses the dataset's precomputed embeddings when it has them and no ``embedder`` is
    given; otherwise the router's own (MiniLM by default). ``warm_start`` in [0, 1): that
    share of the tasks (drawn by the seed) is given to :meth:`Router.warm_start` with every
    model's outcome, and the rest is replayed with bandit feedback. ``drift`` changes one
    model's outcomes (and price) part way through the replayed rounds; ``limit`` caps the
    replayed tasks. :class:`InvalidInputError` when ``warm_start`` is outside [0, 1) or
    leaves no task to replay, ``limit`` is under 1, or ``seed`` is no integer in [0, 2**63)."""
    seed = check_seed(seed)
    if not 0.0 <= warm_start < 1.0:  # (NaN too)
        raise InvalidInputError(f"warm_start must be a share in [0, 1), not {warm_start!r}")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be at least 1 task, not {limit}")
    base = config or RouterConfig()
    texts, unroutable = _routable_texts(dataset, base.max_task_chars)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    if unroutable:  # (the seeded order of the others is kept)
        order = order[~np.isin(order, unroutable)]
        if not len(order):
            raise InvalidInputError(f"{dataset.name}: no task has any text to route")
    n_warm = round(warm_start * len(order))
    if n_warm >= len(order):
        raise InvalidInputError(f"a warm start of {warm_start:g} leaves none of the "
                                f"{len(order)} tasks to replay")
    history, order = order[:n_warm], order[n_warm:][:limit]
    work = dataset if texts is dataset.texts else replace(dataset, texts=texts)
    if embedder is None and dataset.embeddings is not None:
        embedder = PrecomputedEmbedder(work.texts, dataset.embeddings)
    catalog = dataset.catalog(quality_prior=quality_prior)
    column = {key: j for j, key in enumerate(catalog.model_keys())}
    cfg = replace(base, cost_weight=cost_weight, reward_wait_s=max(base.reward_wait_s, 1e9),
                  embedding_cache_size=0)
    router = Router(database_url=database_url, catalog=catalog, embedder=embedder,
                    policy=policy or PolicyConfig(seed=seed), config=cfg)
    chosen = np.empty(len(order), np.int64)
    probability = np.empty(len(order))
    tokens_in, out_tokens = dataset.input_tokens, dataset.output_tokens
    quality, cost = dataset.quality, dataset.cost
    k0 = drift.start(len(order)) if drift is not None else len(order)
    try:
        if n_warm:
            router.warm_start(work.subset(history))
        start = time.perf_counter()
        for k, i in enumerate(order):
            if k == k0 and drift is not None:
                quality, cost = drift.apply(dataset.quality, dataset.cost,
                                            dataset.models.index(drift.model))
                if drift.announce and drift.price_factor != 1.0:
                    spec = catalog.get(catalog.model_keys()[dataset.models.index(drift.model)])
                    router.update_pricing(spec.provider, {spec.model: {
                        "input_price_per_1m": spec.input_price_per_1m * drift.price_factor,
                        "output_price_per_1m": spec.output_price_per_1m * drift.price_factor}})
            d = router.select(texts[i], event_id=f"{dataset.name}-{seed}-{k}",
                              input_tokens=int(tokens_in[i]) if tokens_in is not None else None)
            j = column[f"{d.provider}/{d.model}"]
            router.reward(d.event_id, quality=float(quality[i, j]), cost_usd=float(cost[i, j]),
                          latency_s=float(dataset.latency[i, j]),
                          output_tokens=int(out_tokens[i, j]) if out_tokens is not None
                          else None)
            chosen[k], probability[k] = j, d.probability
        seconds = time.perf_counter() - start
    finally:
        router.close()
    return ReplayResult(dataset=dataset, seed=seed, cost_weight=cost_weight, order=order,
                        chosen=chosen, probability=probability, seconds=seconds, drift=drift)

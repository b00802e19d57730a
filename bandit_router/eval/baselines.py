"""Routers to hold the bandit router against, and RouterBench's AIQ.

- :func:`knn_greedy` — online, bandit feedback, no VW: the same FAISS memory and estimates
  as the router (neighbours' quality shrunk to the model's mean, moved by the task's
  difficulty where ``task_difficulty`` says; cost from the neighbours' output tokens; each
  setting not given is ``RouterConfig``'s), then the best estimated
  ``quality - cost_weight x cost``, with ``epsilon`` exploration.
- :func:`supervised` — full information on a training split (every model's outcome on every
  training task): k-nearest training tasks' mean quality and cost per model, best estimated
  reward on the test split. The upper bound a bandit learner approaches.
- :func:`aiq` — the area under a router's cost-quality curve (its non-decreasing convex
  hull over the points traced by sweeping the cost weight), averaged over a cost range;
  compare with the zero router's.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
import numpy.typing as npt

from ..core._config import RouterConfig
from ..core._memory import Memory
from ..core._objective import Objective
from ..core._scoring import estimates
from .datasets import RoutingDataset
from .replay import hull_quality, zero_router_hull

__all__ = ["aiq", "knn_greedy", "supervised"]

Array = npt.NDArray[np.float64]


def _embeddings(dataset: RoutingDataset) -> npt.NDArray[np.float32]:
    if dataset.embeddings is None:
        from ..core._onnx import make_embedder

        return make_embedder().embed(dataset.texts)
    return dataset.embeddings


def knn_greedy(dataset: RoutingDataset, *, seed: int = 0, cost_weight: float = 20.0,
               k: int | None = None, epsilon: float = 0.05,
               prior_strength: float | None = None, task_difficulty: bool | None = None,
               quality_prior: float = 0.5) -> tuple[npt.NDArray[np.int64],
                                                    npt.NDArray[np.int64]]:
    """Replay with the kNN-greedy router; returns (order, chosen column per round), in the
    same seeded order as :func:`~bandit_router.eval.replay.replay`. ``k`` (the neighbours
    recalled), ``prior_strength`` and ``task_difficulty`` are the router's
    (:class:`~bandit_router.RouterConfig`'s) unless given."""
    config = RouterConfig()  # (one home for each setting: the router's defaults)
    k = config.neighbours if k is None else k
    prior_strength = config.prior_strength if prior_strength is None else prior_strength
    difficulty = config.task_difficulty if task_difficulty is None else task_difficulty
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    explore = np.random.default_rng(seed + 1)
    emb = _embeddings(dataset)
    specs = list(dataset.catalog(quality_prior=quality_prior))
    keys = [s.key for s in specs]
    memory = Memory(dim=emb.shape[1], capacity=max(len(dataset), k), compact=False)
    objective = Objective(cost_weight)
    chosen = np.empty(len(order), np.int64)
    n_in = dataset.input_tokens
    for t, i in enumerate(order):
        recall = memory.recall(emb[i], keys, k=k)
        stats = memory.model_stats()
        scores = [objective.reward(est.quality, est.cost_usd) for est in estimates(
            specs, recall, input_tokens=int(n_in[i]) if n_in is not None else 100,
            stats=stats, prior_strength=prior_strength, task_difficulty=difficulty,
            default_output_tokens=config.default_output_tokens)]
        j = (int(explore.integers(len(specs))) if explore.random() < epsilon
             else int(np.argmax(scores)))
        chosen[t] = j
        tokens = dataset.output_tokens
        memory.add(emb[i], keys[j], quality=float(dataset.quality[i, j]),
                   reward=float(objective.reward(dataset.quality[i, j], dataset.cost[i, j])),
                   cost_usd=float(dataset.cost[i, j]), latency_s=None,
                   output_tokens=float(tokens[i, j]) if tokens is not None else None)
    return order, chosen


def supervised(dataset: RoutingDataset, train: Sequence[int] | npt.NDArray[np.integer],
               test: Sequence[int] | npt.NDArray[np.integer], *,
               cost_weight: float = 20.0, k: int = 32) -> npt.NDArray[np.int64]:
    """Full-information kNN router: the chosen column for each test task."""
    emb = _embeddings(dataset)
    tr, te = np.asarray(train), np.asarray(test)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(np.ascontiguousarray(emb[tr]))
    _, nn = index.search(np.ascontiguousarray(emb[te]), k)
    q = dataset.quality[tr][nn].mean(axis=1)  # (test, models)
    c = dataset.cost[tr][nn].mean(axis=1)
    return np.asarray(np.argmax(Objective(cost_weight).reward(q, c), axis=1), dtype=np.int64)


def aiq(points: Sequence[tuple[float, float]], *, low: float, high: float,
        samples: int = 2000) -> float:
    """Mean quality of the curve through ``points`` (cost, quality) over [low, high]: the
    non-decreasing convex hull, flat before its first and after its last point."""
    hull = zero_router_hull([p[0] for p in points], [p[1] for p in points])
    grid = np.linspace(low, high, samples)
    return float(np.mean([hull_quality(hull, c) for c in grid]))

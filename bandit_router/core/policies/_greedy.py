"""kNN-greedy: pick the best neighbours' estimate of reward, without VW."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .. import _namespaces as ns
from ._base import Features, Policy

__all__ = ["KNNGreedyPolicy"]


def _score(action: Features) -> float:
    a = action.get(ns.ESTIMATE)
    if not isinstance(a, Mapping):
        return 0.0
    return float(a.get("quality", 0.0)) - float(a.get("cost", 0.0)) \
        - float(a.get("latency", 0.0))


class KNNGreedyPolicy(Policy):
    """Epsilon-greedy on the router's nearest-neighbour estimate of each model's reward:
    ``quality - cost_weight x cost - latency_weight x latency`` from the ``A`` features
    (the FAISS memory's per-model quality on similar past tasks, shrunk towards the model's
    mean and prior). It learns nothing itself: the router's memory does, from every reward.
    The baseline a learned policy must beat, and an arm for A/B experiments.

    >>> p = KNNGreedyPolicy(epsilon=0.2)
    >>> [round(x, 2) for x in p.pmf({}, [{"A": {"quality": 0.9, "cost": 0.1}},
    ...                                  {"A": {"quality": 0.5, "cost": 0.0}}])]
    [0.9, 0.1]
    """

    name = "knn_greedy"

    def __init__(self, *, epsilon: float = 0.05, seed: int = 0) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) \
                or not math.isfinite(epsilon) or not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be in [0, 1]")
        super().__init__(seed=seed)
        self.epsilon = float(epsilon)

    def pmf(self, context: Features, actions: Sequence[Features], *,
            draw: float | None = None) -> list[float]:
        scores = [_score(a) for a in actions]
        best = max(range(len(actions)), key=lambda i: (scores[i], -i))
        share = self.epsilon / len(actions)
        return [share + (1.0 - self.epsilon if i == best else 0.0) for i in range(len(actions))]

    def learn(self, context: Features, actions: Sequence[Features], index: int, reward: float,
              probability: float, *, memo: object = None) -> None:
        return None

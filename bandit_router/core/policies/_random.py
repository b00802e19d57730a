"""The uniform-random policy: the floor every learner must beat."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import Features, Policy

__all__ = ["RandomPolicy"]


class RandomPolicy(Policy):
    """Picks uniformly among the eligible actions and learns nothing.

    >>> RandomPolicy(seed=1).pmf({}, [{}, {}, {}, {}])
    [0.25, 0.25, 0.25, 0.25]
    """

    name = "random"

    def pmf(self, context: Features, actions: Sequence[Features], *,
            draw: float | None = None) -> list[float]:
        return [1.0 / len(actions)] * len(actions)

    def learn(self, context: Features, actions: Sequence[Features], index: int, reward: float,
              probability: float, *, memo: object = None) -> None:
        return None

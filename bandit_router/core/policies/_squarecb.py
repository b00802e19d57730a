"""SquareCB exploration with a count-based optimism bonus applied only when deciding.

VW's own ``--squarecb`` (Foster & Rakhlin 2020) turns the regressor's predicted costs into a
distribution: every action but the best gets ``1 / (K + gamma * gap)``, the best the rest,
with ``gamma = gamma_scale * t ** gamma_exponent`` after ``t`` learned examples. Once gamma is
large, an action whose estimate fell low early is hardly ever tried again, and nothing
corrects it: on MMLU-Pro whole seeds settled on weaker models that way.

:class:`Optimism` raises each action's predicted reward by a UCB bonus,
``optimism * sqrt(ln(N + 2) / (n + 1))``, where ``n`` counts the rewards learned for that
action's identity and ``N`` those of all eligible actions, before the squareCB rule. The bonus
is never learned (the regressor is trained on the true rewards, as VW's squareCB trains it),
so it only decides which action counts as best and how far behind the others are; it shrinks
as an action is tried, and an action never tried keeps being re-tested.

>>> opt = Optimism(scale=0.2)
>>> opt.record(("cheap",)); opt.record(("cheap",))
>>> bonus = opt.bonus([("cheap",), ("strong",)])
>>> bonus[1] > bonus[0] > 0
True
>>> pmf = squarecb_pmf([0.0, 0.1], gamma=100.0)
>>> round(pmf[1], 4), round(pmf[0], 4)
(0.0833, 0.9167)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Optimism", "squarecb_pmf", "toward_baseline"]


def squarecb_pmf(costs: Sequence[float], *, gamma: float) -> list[float]:
    """SquareCB's distribution over actions with predicted ``costs`` (lower is better), as
    VW computes it: the first lowest cost is the best action."""
    k = len(costs)
    best = min(range(k), key=costs.__getitem__)
    low = costs[best]
    pmf = [1.0 / (k + gamma * (c - low)) if a != best else 0.0 for a, c in enumerate(costs)]
    pmf[best] = 1.0 - sum(pmf)
    return pmf


def toward_baseline(costs: Sequence[float], baselines: Sequence[float], counts: Sequence[int],
                    *, strength: float) -> list[float]:
    """Each predicted cost weighed against its baseline as ``counts`` rewards against
    ``strength``: ``(n * cost + strength * baseline) / (n + strength)``. A model never learned
    is predicted at its baseline; VW's prediction takes over as its rewards come.

    >>> toward_baseline([0.2, -0.1], [-0.5, -0.5], [0, 10], strength=10.0)
    [-0.5, -0.3]
    """
    if not len(costs) == len(baselines) == len(counts):
        raise ValueError("costs, baselines and counts must be aligned")
    if strength <= 0:
        return list(costs)
    return [(n * c + strength * b) / (n + strength)
            for c, b, n in zip(costs, baselines, counts, strict=True)]


#: An action's identity: the names of its model features.
Identity = tuple[str, ...]


class Optimism:
    """Counts of learned rewards per action identity, and the decision-time bonus they give
    (see the module docstring). ``scale`` is in reward units."""

    def __init__(self, *, scale: float) -> None:
        self.scale = scale
        self.counts: dict[Identity, int] = {}

    def bonus(self, identities: Sequence[Identity]) -> list[float]:
        counts = self.counts_of(identities)
        log_total = math.log(sum(counts) + 2)
        return [self.scale * math.sqrt(log_total / (n + 1)) for n in counts]

    def counts_of(self, identities: Sequence[Identity]) -> list[int]:
        """The rewards learned for each of ``identities``."""
        return [self.counts.get(i, 0) for i in identities]

    def record(self, identity: Identity) -> None:
        self.counts[identity] = self.counts.get(identity, 0) + 1

    def to_state(self) -> list[list[Any]]:
        """The counts as JSON-ready ``[[*identity], count]`` pairs."""
        return [[list(i), n] for i, n in self.counts.items()]

    @classmethod
    def from_state(cls, state: Any, *, scale: float) -> Optimism:
        """Counts written by :meth:`to_state`; ValueError unless they are whole counts of
        named identities."""
        try:
            pairs = [(names, n) for names, n in state]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not [[names...], count] pairs: {exc}") from None
        if not all(isinstance(names, list) and all(isinstance(x, str) for x in names)
                   and type(n) is int and n >= 0 for names, n in pairs):
            raise ValueError("not whole counts of named models")
        counts = {tuple(names): n for names, n in pairs}
        made = cls(scale=scale)
        made.counts = counts
        return made

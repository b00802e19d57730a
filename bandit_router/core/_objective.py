"""What the router maximises: the one home of the reward formula."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

__all__ = ["Objective"]

_A = TypeVar("_A")


@dataclass(frozen=True, slots=True)
class Objective:
    """``quality - cost_weight * cost_usd - latency_weight * latency_s``: quality points
    traded against dollars and seconds. A cost weight of 20 means a dollar is worth 20 quality
    points, so a model that costs $0.01 more per request must answer 0.2 better.

    Works on numbers and, unchanged, on numpy arrays (a replay's outcome matrices). Without a
    latency the latency term is left out (not counted as zero seconds), so the figures of a
    workload without latencies are the same to the last digit.

    >>> Objective(cost_weight=20.0).reward(0.9, 0.01)
    0.7
    >>> round(Objective(cost_weight=20.0, latency_weight=0.1).reward(0.9, 0.01, 2.0), 6)
    0.5
    """

    #: the formula, as error messages spell it
    FORMULA: ClassVar[str] = "quality - cost_weight x cost - latency_weight x latency"

    cost_weight: float = 0.0
    latency_weight: float = 0.0

    @overload
    def reward(self, quality: float, cost_usd: float, latency_s: float | None = None
               ) -> float: ...

    @overload
    def reward(self, quality: _A, cost_usd: Any, latency_s: Any = None) -> _A: ...

    def reward(self, quality: Any, cost_usd: Any, latency_s: Any = None) -> Any:
        value = quality - self.cost_weight * cost_usd
        if latency_s is not None:
            value = value - self.latency_weight * latency_s
        return value

"""Result records shared by the library and the HTTP client: an estimate with its interval,
and an A/B experiment's report. Plain dataclasses without numpy, so that
:mod:`bandit_router.client` can build them without importing the router."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ArmStats", "Comparison", "Estimate", "ExperimentReport"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A value with its confidence interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}] (n={self.n})"


@dataclass(frozen=True, slots=True)
class ArmStats:
    """An arm's live statistics: rewarded requests (default rewards left out) and the mean
    quality, cost, latency and reward with intervals; ``fixed_model`` / ``models`` repeat
    the arm's restriction, if any."""

    arm: str
    share: float
    requests: int
    quality: Estimate
    cost_usd: Estimate
    latency_s: Estimate | None
    reward: Estimate
    fixed_model: str | None = None
    models: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``b - a`` on a metric: the difference, its interval, a two-sided p-value (Welch's
    test, normal approximation) and whether it is significant at the experiment's level."""

    metric: str
    a: str
    b: str
    difference: float
    low: float
    high: float
    p_value: float
    significant: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentReport:
    """An experiment's state: its status, every arm's statistics, and each arm against the
    control (the first arm) on reward, where both have at least two rewarded requests."""

    name: str
    status: Literal["running", "promoted", "stopped"]
    promoted: str | None
    control: str
    arms: dict[str, ArmStats]
    comparisons: tuple[Comparison, ...] = field(default=())

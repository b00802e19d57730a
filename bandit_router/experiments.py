"""A/B experiments between routing strategies on live traffic.

Each arm is a :class:`Router` with its own ``arm`` tag on the same database: it logs its
decisions with that tag and learns only its own arm's rewards (on-policy), so arms with
different settings (exploration, cost weight, catalog, a fixed model through constraints)
never contaminate each other. Assignment is sticky: a unit (user or session id) is hashed
with the experiment's name, so it stays in one arm across requests, processes and restarts.

>>> from bandit_router.simulation import HashEmbedder, demo_catalog
>>> from bandit_router import Router
>>> arms = {name: Router(database_url="sqlite://", catalog=demo_catalog(),
...                      embedder=HashEmbedder(), arm=name) for name in ("A", "B")}
>>> exp = Experiment("cost-weight-test", arms)
>>> exp.assign("user-42") == exp.assign("user-42")
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import InvalidInputError, UnknownEventError
from ._router import Router
from ._types import Decision, RewardReceipt
from .evaluation import Estimate, Z, mean_estimate

__all__ = ["ArmStats", "Comparison", "Experiment", "compare_means"]

@dataclass(frozen=True, slots=True)
class ArmStats:
    arm: str
    share: float
    requests: int
    quality: Estimate
    cost_usd: Estimate
    latency_s: Estimate | None
    reward: Estimate


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


def compare_means(a: np.ndarray, b: np.ndarray, *, level: float = 0.95, metric: str = "",
                  names: tuple[str, str] = ("a", "b")) -> Comparison:
    """Welch's two-sample test of ``mean(b) - mean(a)`` (normal approximation)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise InvalidInputError("each arm needs at least two rewarded requests")
    diff = float(b.mean() - a.mean())
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    z = diff / se if se > 0 else (math.inf if diff else 0.0)
    p = math.erfc(abs(z) / math.sqrt(2))
    half = Z[level] * se
    return Comparison(metric=metric, a=names[0], b=names[1], difference=diff,
                      low=diff - half, high=diff + half, p_value=p,
                      significant=p < 1 - level)


class Experiment:
    """Two or more routing strategies sharing traffic, with sticky assignment by unit key.

    ``shares`` default to equal. :meth:`promote` sends all traffic to one arm (units keep
    their assignment in the log; new decisions all go to the winner); :meth:`stop` is
    :meth:`promote` of the first arm, the control.
    """

    def __init__(self, name: str, arms: Mapping[str, Router], *,
                 shares: Mapping[str, float] | None = None, level: float = 0.95) -> None:
        if len(arms) < 2:
            raise InvalidInputError("an experiment needs at least two arms")
        if level not in Z:
            raise InvalidInputError(f"level must be one of {sorted(Z)}")
        tags = [router.arm for router in arms.values()]
        if "" in tags or len(set(tags)) != len(tags):
            raise InvalidInputError("each arm needs its own router built with Router(arm=tag), "
                                    "a distinct non-empty tag, so that it learns only its arm")
        self._arm_of_tag = {router.arm: name for name, router in arms.items()}
        self.name = name
        self.arms = dict(arms)
        self.level = level
        self.shares = self._normalise(shares or {a: 1.0 for a in self.arms})
        self.promoted: str | None = None

    def _normalise(self, shares: Mapping[str, float]) -> dict[str, float]:
        if set(shares) != set(self.arms) or any(not v >= 0 for v in shares.values()):
            raise InvalidInputError("shares must give every arm a weight >= 0")
        total = sum(shares.values())
        if total <= 0:
            raise InvalidInputError("shares must not all be zero")
        return {a: shares[a] / total for a in self.arms}

    def assign(self, unit_key: str) -> str:
        """The arm of a unit: fixed by the hash of the experiment name and the unit key."""
        if self.promoted is not None:
            return self.promoted
        digest = hashlib.sha256(f"{self.name}\x00{unit_key}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        cumulative = 0.0
        for arm, share in self.shares.items():
            cumulative += share
            if u < cumulative:
                return arm
        return next(reversed(self.shares))

    def select(self, task: str, *, unit_key: str, **kwargs: Any) -> Decision:
        """Route ``task`` with the unit's arm; the decision records the arm."""
        arm = self.assign(unit_key)
        metadata = {**(kwargs.pop("metadata", None) or {}),
                    "experiment": self.name, "arm": arm, "unit_key": unit_key}
        return self.arms[arm].select(task, metadata=metadata, **kwargs)

    def reward(self, event_id: str, **kwargs: Any) -> RewardReceipt:
        """Reward an event through the router of the arm that decided it."""
        any_router = next(iter(self.arms.values()))
        event = any_router.store.get_event(event_id) if isinstance(event_id, str) else None
        if event is None or event.arm not in self._arm_of_tag:
            raise UnknownEventError(str(event_id))
        return self.arms[self._arm_of_tag[event.arm]].reward(event_id, **kwargs)

    def stats(self) -> dict[str, ArmStats]:
        """Per arm: requests rewarded, mean quality, cost, latency and reward, with
        intervals at the experiment's level."""
        out = {}
        for arm, router in self.arms.items():
            rows = router.store.arm_outcomes(router.arm)
            data = np.array([(q, c, r) for q, c, _, r in rows]).reshape(-1, 3)
            latencies = np.array([lat for _, _, lat, _ in rows if lat is not None])
            out[arm] = ArmStats(
                arm=arm, share=self.shares[arm], requests=len(rows),
                quality=mean_estimate(data[:, 0], level=self.level),
                cost_usd=mean_estimate(data[:, 1], level=self.level),
                latency_s=mean_estimate(latencies, level=self.level) if len(latencies)
                else None,
                reward=mean_estimate(data[:, 2], level=self.level))
        return out

    def compare(self, a: str, b: str, *, metric: str = "reward") -> Comparison:
        """Is arm ``b`` different from arm ``a`` on ``metric`` (quality, cost, reward)?"""
        column = {"quality": 0, "cost": 1, "reward": 3}.get(metric)
        if column is None or a not in self.arms or b not in self.arms:
            raise InvalidInputError("compare two arms on quality, cost or reward")
        ra, rb = self.arms[a], self.arms[b]
        va = np.array([row[column] for row in ra.store.arm_outcomes(ra.arm)])
        vb = np.array([row[column] for row in rb.store.arm_outcomes(rb.arm)])
        return compare_means(va, vb, level=self.level, metric=metric, names=(a, b))

    def promote(self, arm: str) -> None:
        """Send all new traffic to ``arm``."""
        if arm not in self.arms:
            raise InvalidInputError(f"unknown arm {arm!r}")
        self.promoted = arm

    def stop(self) -> None:
        """End the experiment: all new traffic to the first arm (the control)."""
        self.promote(next(iter(self.arms)))

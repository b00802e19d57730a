"""A/B experiments between routing strategies on live traffic.

Each arm is a :class:`Router` with its own ``arm`` tag on the same database: it logs its
decisions with that tag and learns only its own arm's rewards (on-policy), so arms with
different settings (exploration, cost weight, policy) never contaminate each other. An arm
may also be an :class:`Arm`: a router restricted to a subset of the catalog
(``Arm(router=..., models=[...])``) or to one model (``Arm(router=...,
fixed_model="openai/gpt-4o")``, the usual control "always the strongest"). The restriction
is a constraint applied to every request of the arm, so a fixed-model arm logs each decision
with probability 1 and is rewarded, counted and compared like any other arm. Assignment is
sticky: a unit (user or session id) is hashed with the experiment's name, so it stays in
one arm across requests, processes and restarts.

>>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ..core._catalog import Catalog
from ..core._constraints import Constraints
from ..core._errors import (
    InvalidInputError,
    InvalidTaskError,
    NoEligibleModelError,
    UnknownEventError,
    UnknownModelError,
)
from ..core._results import ArmStats, Comparison, ExperimentReport
from ..core._types import Decision, RewardReceipt
from ..core._validation import storable
from ..router._router import Router
from .offpolicy import Z, mean_estimate

__all__ = ["Arm", "ArmStats", "Comparison", "Experiment", "ExperimentReport", "compare_means"]


def _matching(catalog: Catalog, name: str) -> list[str]:
    """The catalog keys a name stands for: ``provider/model``, or a bare model name (which
    several providers may serve)."""
    if name in catalog:
        return [name]
    return [spec.key for spec in catalog if spec.model == name]


def _resolve(catalog: Catalog, names: Iterable[str], field_name: str) -> frozenset[str]:
    """Catalog keys of ``names``; :class:`UnknownModelError` for a name the catalog lacks."""
    keys: set[str] = set()
    unknown = []
    for name in names:
        found = _matching(catalog, name)
        if not found:
            unknown.append(name)
        keys.update(found)
    if unknown:
        raise UnknownModelError(f"{field_name} names unknown model(s) {sorted(unknown)}")
    return frozenset(keys)


@dataclass(frozen=True, slots=True, kw_only=True)
class Arm:
    """One arm of an :class:`Experiment`: a router, optionally restricted to catalog models.

    - ``models``: the arm may only route to these models (``provider/model`` or a model name
      served by one or several providers); the restriction is intersected with each
      request's own constraints.
    - ``fixed_model``: the arm always routes to this one model, so its decisions are logged
      with probability 1 (the usual control arm: "always the strongest"). It must name one
      catalog model; a request whose constraints exclude it gets
      :class:`~bandit_router.NoEligibleModelError`, never another model.

    Names are checked against the router's catalog at construction
    (:class:`~bandit_router.UnknownModelError`) and kept as ``provider/model`` keys.

    >>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
    >>> router = Router(database_url="sqlite://", catalog=demo_catalog(),
    ...                 embedder=HashEmbedder(), arm="strongest")
    >>> Arm(router=router, fixed_model="large").fixed_model
    'frontier/large'
    """

    router: Router
    models: tuple[str, ...] | None = None
    fixed_model: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.router, Router):
            raise InvalidInputError("an arm needs a Router (built with Router(arm=tag))")
        catalog = self.router.catalog
        if self.models is not None and self.fixed_model is not None:
            raise InvalidInputError("an arm sets models or fixed_model, not both")
        if self.fixed_model is not None:
            if not isinstance(self.fixed_model, str) or not self.fixed_model:
                raise InvalidInputError("fixed_model must be a model name")
            found = _matching(catalog, self.fixed_model)
            if not found:
                raise UnknownModelError(
                    f"fixed_model {self.fixed_model!r} is not in the catalog")
            if len(found) > 1:
                raise InvalidInputError(
                    f"fixed_model {self.fixed_model!r} is served by {sorted(found)}: name one "
                    "as provider/model")
            object.__setattr__(self, "fixed_model", found[0])
        if self.models is not None:
            if isinstance(self.models, str) or not all(
                    isinstance(m, str) and m for m in self.models):
                raise InvalidInputError("models must be a list of model names")
            if not self.models:
                raise InvalidInputError("models must name at least one model")
            keys = _resolve(catalog, self.models, "models")
            object.__setattr__(self, "models",
                               tuple(k for k in catalog.model_keys() if k in keys))

    @property
    def allowed(self) -> frozenset[str] | None:
        """The catalog keys this arm may route to (``None``: the whole catalog)."""
        if self.fixed_model is not None:
            return frozenset({self.fixed_model})
        return frozenset(self.models) if self.models is not None else None

    def constraints(self, requested: Constraints | None) -> Constraints | None:
        """The request's constraints narrowed to this arm's models."""
        allowed = self.allowed
        if allowed is None:
            return requested
        c = requested if requested is not None else Constraints()
        if not isinstance(c, Constraints):
            raise InvalidTaskError("constraints must be a Constraints instance")
        catalog = self.router.catalog
        keys = set(allowed)
        if c.allowed_models is not None:
            keys &= _resolve(catalog, c.allowed_models, "allowed_models")
        excluded = (_resolve(catalog, c.excluded_models, "excluded_models")
                    if c.excluded_models else frozenset())
        keys -= excluded
        if not keys:
            raise NoEligibleModelError({
                k: ("excluded by the request's constraints" if k in allowed
                    else f"not a model of experiment arm {self.router.arm!r}")
                for k in catalog.model_keys()})
        return replace(c, allowed_models=frozenset(keys))


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

    ``arms`` maps each arm's name to a :class:`Router` (its own ``arm`` tag) or an
    :class:`Arm` (a router restricted to some models, or to one). The first arm is the
    control. ``shares`` default to equal. :meth:`promote` sends all traffic to one arm
    (units keep their assignment in the log; new decisions all go to the winner);
    :meth:`stop` ends the experiment: all traffic to the control.
    """

    def __init__(self, name: str, arms: Mapping[str, Router | Arm], *,
                 shares: Mapping[str, float] | None = None, level: float = 0.95) -> None:
        if len(arms) < 2:
            raise InvalidInputError("an experiment needs at least two arms")
        for what in (name, *arms):
            if not storable(what, max_chars=64):
                raise InvalidInputError(f"experiment and arm names must be 1 to 64 characters "
                                        f"without NUL or lone surrogates, got {what!r}")
        if level not in Z:
            raise InvalidInputError(f"level must be one of {sorted(Z)}")
        definitions = {a: spec if isinstance(spec, Arm) else Arm(router=spec)
                       for a, spec in arms.items()}
        tags = [d.router.arm for d in definitions.values()]
        if "" in tags or len(set(tags)) != len(tags):
            raise InvalidInputError("each arm needs its own router built with Router(arm=tag), "
                                    "a distinct non-empty tag, so that it learns only its arm")
        self._arm_of_tag = {d.router.arm: a for a, d in definitions.items()}
        self.name = name
        #: each arm's definition (router and model restriction)
        self.definitions = definitions
        #: each arm's router
        self.arms = {a: d.router for a, d in definitions.items()}
        self.level = level
        self.shares = self._normalise(shares or {a: 1.0 for a in self.arms})
        self.promoted: str | None = None
        self.stopped = False

    @property
    def control(self) -> str:
        """The first arm, against which the others are compared."""
        return next(iter(self.arms))

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

    def select(self, task: str | Sequence[Mapping[str, Any]], *, unit_key: str,
               arm: str | None = None, **kwargs: Any) -> Decision:
        """Route ``task`` with the unit's arm (or with ``arm``, named: a request sent to one
        arm on purpose, such as a canary, while the experiment runs; once it is promoted or
        stopped, the arm that serves everyone): :meth:`Router.select`'s keyword arguments,
        with the request's ``constraints`` narrowed to the arm's models. The decision records
        the experiment, the arm and the unit. An arm it does not have raises
        :class:`UnknownModelError`."""
        if arm is not None and arm not in self.arms:
            raise UnknownModelError(f"experiment {self.name!r} has no arm {arm!r} (arms: "
                                    f"{', '.join(self.arms)})")
        if arm is None or self.promoted is not None:
            arm = self.assign(unit_key)
        definition = self.definitions[arm]
        constraints = definition.constraints(kwargs.pop("constraints", None))
        metadata = {**(kwargs.pop("metadata", None) or {}),
                    "experiment": self.name, "arm": arm, "unit_key": unit_key}
        return definition.router.select(task, constraints=constraints, metadata=metadata,
                                        **kwargs)

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
        for arm, definition in self.definitions.items():
            router = definition.router
            rows = router.store.arm_outcomes(router.arm)
            data = np.array([(q, c, r) for q, c, _, r in rows]).reshape(-1, 3)
            latencies = np.array([lat for _, _, lat, _ in rows if lat is not None])
            out[arm] = ArmStats(
                arm=arm, share=self.shares[arm], requests=len(rows),
                quality=mean_estimate(data[:, 0], level=self.level),
                cost_usd=mean_estimate(data[:, 1], level=self.level),
                latency_s=mean_estimate(latencies, level=self.level) if len(latencies)
                else None,
                reward=mean_estimate(data[:, 2], level=self.level),
                fixed_model=definition.fixed_model, models=definition.models)
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

    @property
    def status(self) -> Literal["running", "promoted", "stopped"]:
        if self.stopped:
            return "stopped"
        return "promoted" if self.promoted is not None else "running"

    def report(self, *, metric: str = "reward") -> ExperimentReport:
        """Every arm's statistics and each arm against the control on ``metric`` (arms with
        fewer than two rewarded requests, or a control with fewer, are not compared)."""
        stats = self.stats()
        control = self.control
        comparisons = tuple(
            self.compare(control, arm, metric=metric) for arm in list(self.arms)[1:]
            if stats[control].requests >= 2 and stats[arm].requests >= 2)
        return ExperimentReport(name=self.name, status=self.status, promoted=self.promoted,
                                control=control, arms=stats, comparisons=comparisons)

    def promote(self, arm: str) -> None:
        """Send all new traffic to ``arm``."""
        if arm not in self.arms:
            raise InvalidInputError(f"unknown arm {arm!r}")
        self.promoted = arm
        self.stopped = False

    def stop(self) -> None:
        """End the experiment: all new traffic to the first arm (the control)."""
        self.promote(self.control)
        self.stopped = True

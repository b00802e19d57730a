"""Routing constraints and the eligibility filter applied before the policy decides."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._catalog import ModelSpec
from ._errors import InvalidConstraintsError

__all__ = ["Constraints", "Eligibility", "Estimate", "RoutingConstraints", "filter_eligible"]


def _names(values: Iterable[str] | None, field: str) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise InvalidConstraintsError(f"{field} must be a list of names, not a string")
    try:
        out = frozenset(values)
    except TypeError:
        raise InvalidConstraintsError(f"{field} must be a list of names") from None
    if not all(isinstance(v, str) and v for v in out):
        raise InvalidConstraintsError(f"{field} must hold non-empty strings")
    return out


def _limit(value: float | None, field: str, *, upper: float = math.inf) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0 or value > upper:
        raise InvalidConstraintsError(f"{field} must be a finite number in [0, {upper:g}]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    """What a request allows. Every field is optional.

    - ``max_cost_usd``: on the estimated cost of *this* request (input tokens x input price
      plus predicted output tokens x output price).
    - ``max_latency_s``: on the model's estimated latency (measured once it has rewards).
    - ``min_quality``: on the estimated quality for this task (the neighbours' measured
      quality blended with the catalog prior). When no model that the other constraints
      allow is estimated to reach it, the router does not refuse: it routes to the model with
      the highest estimate and says so in the decision's ``reasoning``. With
      ``min_quality_strict`` it refuses instead (:class:`~bandit_router.NoEligibleModelError`).
    - ``preferred_providers``: a soft preference; if any eligible model is served by one of
      them, only those are considered, otherwise all eligible models are.
    - ``allowed_providers`` / ``excluded_providers`` / ``allowed_models`` /
      ``excluded_models``: hard filters; models are named ``model`` or ``provider/model``.

    >>> Constraints(max_cost_usd=0.001, excluded_providers=["openai"]).excluded_providers
    frozenset({'openai'})
    """

    max_cost_usd: float | None = None
    max_latency_s: float | None = None
    min_quality: float | None = None
    preferred_providers: frozenset[str] | None = None
    allowed_providers: frozenset[str] | None = None
    excluded_providers: frozenset[str] | None = None
    allowed_models: frozenset[str] | None = None
    excluded_models: frozenset[str] | None = None
    min_quality_strict: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.min_quality_strict, bool):
            raise InvalidConstraintsError("min_quality_strict must be true or false")
        _limit(self.max_cost_usd, "max_cost_usd")
        _limit(self.max_latency_s, "max_latency_s")
        _limit(self.min_quality, "min_quality", upper=1.0)
        for field in ("preferred_providers", "allowed_providers", "excluded_providers",
                      "allowed_models", "excluded_models"):
            object.__setattr__(self, field, _names(getattr(self, field), field))
        for allowed, excluded in (("allowed_providers", "excluded_providers"),
                                  ("allowed_models", "excluded_models")):
            both = ((getattr(self, allowed) or frozenset())
                    & (getattr(self, excluded) or frozenset()))
            if both:
                raise InvalidConstraintsError(f"{sorted(both)} both in {allowed} and {excluded}")

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for field in (f.name for f in fields(self)):
            value = getattr(self, field)
            if value is not None and value is not False:
                out[field] = sorted(value) if isinstance(value, frozenset) else value
        return out


_FIELDS = fields(Constraints)


class RoutingConstraints(Constraints):
    """:class:`Constraints` under the original design's name, which also takes its short
    field names: ``max_cost`` (US dollars, for ``max_cost_usd``) and ``max_latency``
    (seconds, for ``max_latency_s``).

    >>> RoutingConstraints(max_cost=0.01, min_quality=0.8).to_dict()
    {'max_cost_usd': 0.01, 'min_quality': 0.8}
    """

    __slots__ = ()

    def __init__(self, *, max_cost: float | None = None, max_latency: float | None = None,
                 **fields: Any) -> None:
        for short, name, value in (("max_cost", "max_cost_usd", max_cost),
                                   ("max_latency", "max_latency_s", max_latency)):
            if value is not None:
                if fields.get(name) is not None:
                    raise InvalidConstraintsError(f"give {short} or {name}, not both")
                fields[name] = value
        unknown = sorted(set(fields) - {f.name for f in _FIELDS})
        if unknown:
            raise InvalidConstraintsError(f"unknown constraints {unknown}")
        super().__init__(**fields)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the router expects of one model on one request, before it decides."""

    key: str
    quality: float
    evidence: float
    cost_usd: float
    latency_s: float
    output_tokens: float


def _named(spec: ModelSpec, names: frozenset[str]) -> bool:
    return spec.model in names or spec.key in names


@dataclass(frozen=True, slots=True)
class Eligibility:
    """What the constraints leave: the indices of the eligible models, why each other one
    was excluded, whether the provider preference narrowed the choice, and whether no model
    reached ``min_quality`` (so the highest estimate was kept instead)."""

    eligible: list[int]
    reasons: dict[str, str]
    preferred: bool = False
    quality_fallback: bool = False


def filter_eligible(
    specs: Sequence[ModelSpec],
    estimates: Sequence[Estimate],
    constraints: Constraints,
    *,
    input_tokens: int,
    unavailable: Callable[[ModelSpec, Estimate], str | None] | None = None,
) -> Eligibility:
    """Which models ``constraints`` leave for a request of ``input_tokens``: first the hard
    filters (providers, models, context window, cost, latency, and ``unavailable``: why a
    model cannot take the call now, such as every deployment cooling down), then the quality
    floor, then the provider preference (among the models that remain, so a preferred
    provider that cannot take the call leaves the others)."""
    reasons: dict[str, str] = {}
    allowed: list[int] = []
    c = constraints
    for i, (spec, est) in enumerate(zip(specs, estimates, strict=True)):
        why = None
        if c.allowed_providers is not None and spec.provider not in c.allowed_providers:
            why = f"provider {spec.provider} not in allowed_providers"
        elif c.excluded_providers is not None and spec.provider in c.excluded_providers:
            why = f"provider {spec.provider} is excluded"
        elif c.allowed_models is not None and not _named(spec, c.allowed_models):
            why = "model not in allowed_models"
        elif c.excluded_models is not None and _named(spec, c.excluded_models):
            why = "model is excluded"
        elif input_tokens + est.output_tokens > spec.context_window:
            why = (f"~{input_tokens} input + {est.output_tokens:.0f} output tokens exceed the "
                   f"context window of {spec.context_window}")
        elif c.max_cost_usd is not None and est.cost_usd > c.max_cost_usd:
            why = f"estimated cost ${est.cost_usd:.6f} > max_cost_usd ${c.max_cost_usd:g}"
        elif c.max_latency_s is not None and est.latency_s > c.max_latency_s:
            why = f"estimated latency {est.latency_s:.2f}s > max_latency_s {c.max_latency_s:g}s"
        elif unavailable is not None:
            why = unavailable(spec, est)
        if why is None:
            allowed.append(i)
        else:
            reasons[spec.key] = why
    eligible, fallback = allowed, False
    if c.min_quality is not None and allowed:
        eligible = [i for i in allowed if estimates[i].quality >= c.min_quality]
        if not eligible and not c.min_quality_strict:
            # nothing is expected to reach the floor: the closest to it, rather than nothing
            best = max(estimates[i].quality for i in allowed)
            eligible, fallback = [i for i in allowed if estimates[i].quality == best], True
        for i in allowed:
            if i not in eligible:
                reasons[specs[i].key] = (f"estimated quality {estimates[i].quality:.3f} < "
                                         f"min_quality {c.min_quality:g}")
    preferred = False
    if c.preferred_providers and eligible:
        narrowed = [i for i in eligible if specs[i].provider in c.preferred_providers]
        if narrowed:
            preferred = len(narrowed) < len(eligible)
            eligible = narrowed
    return Eligibility(eligible, reasons, preferred, fallback)

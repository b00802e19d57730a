"""Routing constraints and the eligibility filter applied before the policy decides."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._catalog import ModelSpec
from ._errors import InvalidConstraintsError

__all__ = ["Constraints", "Estimate", "filter_eligible"]


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
      quality blended with the catalog prior).
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

    def __post_init__(self) -> None:
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
        for field in self.__slots__:
            value = getattr(self, field)
            if value is not None:
                out[field] = sorted(value) if isinstance(value, frozenset) else value
        return out


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


def filter_eligible(
    specs: Sequence[ModelSpec],
    estimates: Sequence[Estimate],
    constraints: Constraints,
    *,
    input_tokens: int,
) -> tuple[list[int], dict[str, str], bool]:
    """Indices of the eligible models, why each other one was excluded, and whether the
    provider preference narrowed the choice."""
    reasons: dict[str, str] = {}
    eligible: list[int] = []
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
        elif c.min_quality is not None and est.quality < c.min_quality:
            why = f"estimated quality {est.quality:.3f} < min_quality {c.min_quality:g}"
        if why is None:
            eligible.append(i)
        else:
            reasons[spec.key] = why
    preferred = False
    if c.preferred_providers and eligible:
        narrowed = [i for i in eligible if specs[i].provider in c.preferred_providers]
        if narrowed:
            preferred = len(narrowed) < len(eligible)
            eligible = narrowed
    return eligible, reasons, preferred

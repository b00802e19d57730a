from __future__ import annotations

import pytest

from bandit_router import Constraints, InvalidConstraintsError, ModelSpec, RoutingConstraints
from bandit_router.core._constraints import Estimate, filter_eligible

SPECS = [
    ModelSpec(provider="openai", model="big", input_price_per_1m=5, output_price_per_1m=15,
              context_window=128_000),
    ModelSpec(provider="openai", model="small", input_price_per_1m=0.1, output_price_per_1m=0.4,
              context_window=8_000),
    ModelSpec(provider="groq", model="fast", input_price_per_1m=0.5, output_price_per_1m=0.8,
              context_window=32_000),
]
ESTIMATES = [
    Estimate("openai/big", quality=0.9, evidence=0.5, cost_usd=0.01, latency_s=6.0,
             output_tokens=500),
    Estimate("openai/small", quality=0.6, evidence=0.5, cost_usd=0.0002, latency_s=1.5,
             output_tokens=500),
    Estimate("groq/fast", quality=0.75, evidence=0.5, cost_usd=0.001, latency_s=0.4,
             output_tokens=500),
]


def keys(c: Constraints, input_tokens: int = 100) -> tuple[set[str], dict[str, str], bool]:
    got = filter_eligible(SPECS, ESTIMATES, c, input_tokens=input_tokens)
    return {SPECS[i].key for i in got.eligible}, got.reasons, got.preferred


@pytest.mark.parametrize("constraints, eligible, reason", [
    (Constraints(max_cost_usd=0.005), {"openai/small", "groq/fast"}, "max_cost_usd"),
    (Constraints(max_latency_s=2.0), {"openai/small", "groq/fast"}, "max_latency_s"),
    (Constraints(min_quality=0.7), {"openai/big", "groq/fast"}, "min_quality"),
    (Constraints(allowed_providers=["groq"]), {"groq/fast"}, "allowed_providers"),
    (Constraints(excluded_providers=["groq"]), {"openai/big", "openai/small"}, "excluded"),
    (Constraints(allowed_models=["small", "groq/fast"]), {"openai/small", "groq/fast"},
     "allowed_models"),
    (Constraints(excluded_models=["openai/big"]), {"openai/small", "groq/fast"}, "excluded"),
])
def test_each_constraint_excludes_what_it_should(constraints: Constraints, eligible: set[str],
                                                 reason: str) -> None:
    got, reasons, _ = keys(constraints)
    assert got == eligible
    excluded = {s.key for s in SPECS} - eligible
    assert set(reasons) == excluded
    assert all(reason in why for why in reasons.values())


def test_context_window() -> None:
    got, reasons, _ = keys(Constraints(), input_tokens=10_000)
    assert "openai/small" not in got and "context window" in reasons["openai/small"]


def test_preferred_providers_narrow_then_fall_back() -> None:
    got, _, preferred = keys(Constraints(preferred_providers=["groq"]))
    assert got == {"groq/fast"} and preferred
    got, _, preferred = keys(Constraints(preferred_providers=["groq"], max_latency_s=0.1,
                                         min_quality=0.0))
    assert got == set() and not preferred
    got, _, preferred = keys(Constraints(preferred_providers=["mistral"]))
    assert got == {s.key for s in SPECS} and not preferred


@pytest.mark.parametrize("kwargs", [
    {"max_cost_usd": -1}, {"max_latency_s": float("nan")}, {"min_quality": 1.5},
    {"allowed_providers": "openai"}, {"allowed_providers": ["a"], "excluded_providers": ["a"]},
    {"excluded_models": [""]},
])
def test_invalid_constraints(kwargs: dict) -> None:
    with pytest.raises(InvalidConstraintsError):
        Constraints(**kwargs)


def test_to_dict_is_json_ready() -> None:
    d = Constraints(max_cost_usd=0.1, preferred_providers=["b", "a"]).to_dict()
    assert d == {"max_cost_usd": 0.1, "preferred_providers": ["a", "b"]}


def test_min_quality_nobody_reaches_routes_to_the_highest_estimate() -> None:
    got = filter_eligible(SPECS, ESTIMATES, Constraints(min_quality=0.95), input_tokens=100)
    assert [SPECS[i].key for i in got.eligible] == ["openai/big"] and got.quality_fallback
    assert set(got.reasons) == {"openai/small", "groq/fast"}
    # the hard constraints still hold: the best of what they leave
    got = filter_eligible(SPECS, ESTIMATES, Constraints(min_quality=0.95, max_cost_usd=0.005),
                          input_tokens=100)
    assert [SPECS[i].key for i in got.eligible] == ["groq/fast"] and got.quality_fallback
    assert "max_cost_usd" in got.reasons["openai/big"]
    assert "min_quality" in got.reasons["openai/small"]


def test_min_quality_strict_refuses() -> None:
    got = filter_eligible(SPECS, ESTIMATES, Constraints(min_quality=0.95,
                                                        min_quality_strict=True),
                          input_tokens=100)
    assert got.eligible == [] and not got.quality_fallback
    assert all("min_quality" in why for why in got.reasons.values())
    with pytest.raises(InvalidConstraintsError):
        Constraints(min_quality_strict="yes")  # type: ignore[arg-type]


def test_min_quality_reached_is_no_fallback() -> None:
    got = filter_eligible(SPECS, ESTIMATES, Constraints(min_quality=0.7), input_tokens=100)
    assert not got.quality_fallback and len(got.eligible) == 2


def test_routing_constraints_take_the_design_names() -> None:
    c = RoutingConstraints(max_cost=0.005, max_latency=2.0, min_quality=0.5,
                           preferred_providers=["groq"])
    assert isinstance(c, Constraints)
    assert (c.max_cost_usd, c.max_latency_s) == (0.005, 2.0)
    assert keys(c)[0] == {"groq/fast"}
    assert c.to_dict()["preferred_providers"] == ["groq"]
    with pytest.raises(InvalidConstraintsError, match="not both"):
        RoutingConstraints(max_cost=1.0, max_cost_usd=2.0)
    with pytest.raises(InvalidConstraintsError, match="unknown"):
        RoutingConstraints(max_tokens=5)
    with pytest.raises(InvalidConstraintsError):
        RoutingConstraints(max_cost=-1)

from __future__ import annotations

import pytest

from bandit_router import Constraints, InvalidConstraintsError, ModelSpec
from bandit_router._constraints import Estimate, filter_eligible

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
    idx, reasons, preferred = filter_eligible(SPECS, ESTIMATES, c, input_tokens=input_tokens)
    return {SPECS[i].key for i in idx}, reasons, preferred


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

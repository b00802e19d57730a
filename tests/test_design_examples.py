"""The original design's calls, run as written: ``SmartRouter()``, ``route(task,
RoutingConstraints(...))``, ``set_budget``, ``set_load_balancing(strategy=..., providers=[...])``,
``update_pricing`` and ``get_routing_stats`` on the real default router (MiniLM, SQLite file,
bundled catalog)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bandit_router import (
    Constraints,
    NoEligibleModelError,
    RoutingConstraints,
    SmartRouter,
    UnknownModelError,
)
from bandit_router.eval.simulation import HashEmbedder, demo_catalog

DESIGN_TASK = "Design a distributed cache system with CAP theorem considerations"


@pytest.fixture
def router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmartRouter]:
    monkeypatch.chdir(tmp_path)  # SmartRouter() writes bandit_router.db where it runs
    r = SmartRouter()
    yield r
    r.close()


@pytest.mark.slow
def test_the_design_walkthrough_runs_as_written(router: SmartRouter, tmp_path: Path) -> None:
    provider, model = router.route(
        "Translate 'good morning' to Spanish",
        RoutingConstraints(max_cost=0.001, max_latency=10.0, min_quality=0.5,
                           preferred_providers=["openai"]))
    assert provider == "openai"
    assert router.catalog.get(f"{provider}/{model}").provider == "openai"
    assert (tmp_path / "bandit_router.db").exists()

    budgets = router.set_budget(hourly_limit=5.0, daily_limit=50.0, per_request_limit=0.10)
    assert sorted(b.window for b in budgets) == ["day", "hour", "request"]

    status = router.set_load_balancing(strategy="round_robin",
                                       providers=["openai", "anthropic", "gemini"])
    served = {s.key for s in router.catalog if s.provider in {"openai", "anthropic", "gemini"}}
    assert {d.model for d in status} == served
    assert {d.provider for d in status} == {"openai", "anthropic", "gemini"}
    assert all(d.healthy for d in status)

    router.update_pricing("openai", {"gpt-4o": {"input_price_per_1m": 2.0,
                                                "output_price_per_1m": 8.0}})
    assert router.catalog.get("openai/gpt-4o").output_price_per_1m == 8.0

    provider, model = router.route(DESIGN_TASK, min_quality=0.95)
    strongest = max(router.catalog, key=lambda s: s.quality_score)
    assert strongest.quality_score < 0.95  # nothing reaches the floor on priors alone ...
    assert f"{provider}/{model}" == strongest.key  # ... so the most capable model answers

    stats = router.get_routing_stats()
    assert stats["decisions"] == 2 and stats["pending"] == 2
    assert stats["reference_model"] == strongest.key


@pytest.mark.slow
def test_an_unreachable_min_quality_is_said_in_the_reasoning(router: SmartRouter) -> None:
    d = router.select(DESIGN_TASK, constraints=Constraints(min_quality=0.95))
    assert "min_quality 0.95" in d.reasoning and "highest estimate" in d.reasoning
    assert d.probability == 1.0 and d.alternatives == ()
    with pytest.raises(NoEligibleModelError) as info:
        router.select(DESIGN_TASK, constraints=Constraints(min_quality=0.95,
                                                           min_quality_strict=True))
    assert all("min_quality" in why for why in info.value.reasons.values())


def test_route_takes_constraints_as_keywords(make_router) -> None:  # type: ignore[no-untyped-def]
    r = make_router()
    cheap = min(r.catalog, key=lambda s: s.output_price_per_1m)
    provider, model = r.route("hello", allowed_models=[cheap.key])
    assert f"{provider}/{model}" == cheap.key
    # keywords narrow the object's constraints; the design's short names replace the long
    base = Constraints(max_cost_usd=10.0, allowed_models=[cheap.key])
    assert r.route("hello", base, max_cost=1.0) == (provider, model)
    with pytest.raises(NoEligibleModelError):
        r.route("hello", base, max_cost=0.0)


def test_load_balancing_by_provider_name_fails_over(make_router) -> None:  # type: ignore[no-untyped-def]
    r = make_router(catalog=demo_catalog(), embedder=HashEmbedder())
    provider = r.catalog.model_keys()[0].split("/")[0]
    own = [s.key for s in r.catalog if s.provider == provider]
    status = r.set_load_balancing("round_robin", providers=[provider], allowed_fails=1)
    assert sorted(d.model for d in status) == sorted(own)
    assert all(d.id == d.model.replace("/", ".", 1) for d in status)
    d = r.select("hi", constraints=Constraints(allowed_models=[own[0]]))
    assert d.deployment is not None and d.deployment.model == own[0]
    r.reward(d.event_id, error="rate_limit")  # one failure cools it down (allowed_fails=1)
    after = r.select("hi")
    assert f"{after.provider}/{after.model}" != own[0]
    with pytest.raises(NoEligibleModelError):
        r.select("hi", constraints=Constraints(allowed_models=[own[0]]))
    with pytest.raises(UnknownModelError, match="no catalog model is served by provider"):
        r.set_load_balancing("round_robin", providers=["nobody"])
    with pytest.raises(Exception, match="not a string"):
        r.set_load_balancing("round_robin", providers="openai")  # type: ignore[arg-type]

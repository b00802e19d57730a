"""Router-level load balancing over deployments, and prices from a LiteLLM file."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bandit_router import (
    Constraints,
    Deployment,
    InvalidInputError,
    Router,
    RouterConfig,
    UnknownModelError,
)
from tests.conftest import FakeClock

TINY = "budget/tiny"
ONLY_TINY = Constraints(allowed_models=[TINY])


def _deployments() -> list[dict[str, object]]:
    return [{"id": "host-a", "model": TINY, "provider": "host-a", "weight": 1.0},
            {"id": "host-b", "model": TINY, "provider": "host-b", "weight": 3.0}]


def test_set_load_balancing_validates(make_router: Callable[..., Router]) -> None:
    router = make_router()
    with pytest.raises(InvalidInputError):
        router.set_load_balancing("round_robin", providers=[])
    with pytest.raises(UnknownModelError):
        router.set_load_balancing("round_robin", providers=[
            {"id": "x", "model": "nobody/nothing", "provider": "x"}])
    with pytest.raises(InvalidInputError):
        router.set_load_balancing("fastest", providers=_deployments())  # type: ignore[arg-type]
    assert router.deployment_status() == []


@pytest.mark.parametrize(("strategy", "expected"), [("round_robin", {"host-a": 0.5}),
                                                    ("weighted", {"host-a": 0.25})])
def test_strategies_spread_decisions(make_router: Callable[..., Router], strategy: str,
                                     expected: dict[str, float]) -> None:
    router = make_router()
    router.set_load_balancing(strategy, providers=_deployments())  # type: ignore[arg-type]
    seen = Counter()
    for i in range(400):
        d = router.select(f"task {i}", constraints=ONLY_TINY, event_id=f"e{i}")
        assert d.deployment is not None and d.deployment.model == TINY
        seen[d.deployment.id] += 1
        router.reward(d.event_id, quality=0.9, latency_s=0.5)
    assert seen["host-a"] / 400 == pytest.approx(expected["host-a"], abs=0.06)


def test_failing_deployment_cools_down_is_skipped_and_comes_back(
        make_router: Callable[..., Router], clock: FakeClock) -> None:
    router = make_router(clock=clock)
    router.set_load_balancing("round_robin", providers=_deployments(), allowed_fails=2,
                              cooldown_s=30.0)
    picks = []
    for i in range(6):  # host-a fails every call
        d = router.select(f"task {i}", constraints=ONLY_TINY)
        assert d.deployment is not None
        picks.append(d.deployment.id)
        if d.deployment.id == "host-a":
            router.reward(d.event_id, error="server_error", latency_s=0.1)
        else:
            router.reward(d.event_id, quality=0.9, latency_s=0.5)
    status = {s.id: s for s in router.deployment_status()}
    assert not status["host-a"].healthy and status["host-b"].healthy
    assert picks[:4] == ["host-a", "host-b", "host-a", "host-b"]
    assert picks[4:] == ["host-b", "host-b"]  # skipped while cooling down
    clock.advance(31.0)
    later = [router.select(f"later {i}", constraints=ONLY_TINY).deployment for i in range(4)]
    assert {d.id for d in later if d is not None} == {"host-a", "host-b"}
    assert {s.id: s for s in router.deployment_status()}["host-a"].healthy


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_cooldown_one_replica_starts_stops_the_others_calling_it(
        engine: str, sqlite_url: str, request: pytest.FixtureRequest,
        clock: FakeClock) -> None:
    from bandit_router.eval.simulation import HashEmbedder, demo_catalog

    url = sqlite_url if engine == "sqlite" else str(request.getfixturevalue("pg_url"))
    replicas = [Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                       config=RouterConfig(cost_weight=50.0), clock=clock) for _ in range(2)]
    try:
        for r in replicas:
            r.set_load_balancing("round_robin", providers=_deployments(), allowed_fails=1,
                                 cooldown_s=30.0)
        first, second = replicas
        d = first.select("a call that fails", constraints=ONLY_TINY)
        assert d.deployment is not None and d.deployment.id == "host-a"
        first.reward(d.event_id, error="rate_limit", latency_s=0.1)
        assert not {s.id: s for s in first.deployment_status()}["host-a"].healthy
        clock.advance(1.5)  # the other replica reads the shared cooldowns within a second
        status = {s.id: s for s in second.deployment_status()}
        assert not status["host-a"].healthy and status["host-b"].healthy
        assert status["host-a"].cooldown_until == pytest.approx(clock.now - 1.5 + 30.0)
        picks = {second.select(f"elsewhere {i}", constraints=ONLY_TINY).deployment.id  # type: ignore[union-attr]
                 for i in range(4)}
        assert picks == {"host-b"}  # it never called host-a itself, and still avoids it
        clock.advance(30.0)  # the cooldown ends everywhere
        later = {second.select(f"later {i}", constraints=ONLY_TINY).deployment.id  # type: ignore[union-attr]
                 for i in range(4)}
        assert later == {"host-a", "host-b"}
    finally:
        for r in replicas:
            r.close()


def test_model_with_every_deployment_down_is_not_eligible(
        make_router: Callable[..., Router]) -> None:
    router = make_router(config=RouterConfig(cost_weight=0.0))
    router.set_load_balancing("round_robin", providers=[
        Deployment(id="only", model=TINY, provider="host-a", rpm=2)])
    for i in range(2):
        assert router.select(f"t{i}", constraints=ONLY_TINY).deployment is not None
    from bandit_router import NoEligibleModelError
    with pytest.raises(NoEligibleModelError) as info:
        router.select("third within the minute", constraints=ONLY_TINY)
    assert "rpm/tpm" in info.value.reasons[TINY]
    other = router.select("any model will do")
    assert f"{other.provider}/{other.model}" != TINY and other.deployment is None


def test_a_preferred_provider_that_cannot_take_the_call_leaves_the_others(
        make_router: Callable[..., Router]) -> None:
    """Availability is a hard filter before the provider preference: a preferred model
    whose every deployment is at its limit leaves the rest eligible (it used to narrow to
    that model first, then drop it: NoEligibleModelError)."""
    router = make_router(config=RouterConfig(cost_weight=0.0))
    router.set_load_balancing("round_robin", providers=[
        Deployment(id="only", model=TINY, provider="host-a", rpm=1)])
    prefer = Constraints(allowed_models=[TINY, "frontier/large"], preferred_providers=["budget"])
    first = router.select("one", constraints=prefer)
    assert f"{first.provider}/{first.model}" == TINY  # preferred, and available
    second = router.select("two", constraints=prefer)  # its one deployment is at its rpm
    assert f"{second.provider}/{second.model}" == "frontier/large"


def test_least_busy_counts_decisions_waiting_for_their_reward(
        make_router: Callable[..., Router]) -> None:
    router = make_router()
    router.set_load_balancing("least_busy", providers=_deployments())
    first = router.select("one", constraints=ONLY_TINY)
    second = router.select("two", constraints=ONLY_TINY)
    assert first.deployment is not None and second.deployment is not None
    assert first.deployment.id != second.deployment.id
    router.reward(second.event_id, quality=1.0)
    third = router.select("three", constraints=ONLY_TINY)
    assert third.deployment is not None and third.deployment.id == second.deployment.id
    busy = {s.id: s.in_flight for s in router.deployment_status()}
    assert busy == {first.deployment.id: 1, second.deployment.id: 1}


def _price_file(path: Path, router: Router, dear: str, factor: float) -> None:
    table = {}
    for spec in router.catalog:
        scale = factor if spec.key == dear else 1.0
        table[spec.key] = {"litellm_provider": spec.provider, "mode": "chat",
                           "input_cost_per_token": spec.input_price_per_1m * scale / 1e6,
                           "output_cost_per_token": spec.output_price_per_1m * scale / 1e6}
    path.write_text(json.dumps(table))


def test_watched_price_file_moves_the_next_decisions(make_router: Callable[..., Router],
                                                    tmp_path: Path) -> None:
    router = make_router(config=RouterConfig(cost_weight=200.0))
    path = tmp_path / "model_prices_and_context_window.json"
    _price_file(path, router, TINY, 1.0)
    watcher = router.watch_prices(path, interval_s=0.05)
    assert watcher.running
    for i in range(150):  # squareCB explores near-uniformly until it has learned something
        d = router.select(f"warm up {i}", event_id=f"w{i}")
        router.reward(d.event_id, quality=0.8)
    before = Counter(f"{d.provider}/{d.model}" for d in
                     (router.select(f"say hi {i}", event_id=f"b{i}") for i in range(60)))
    leader, _ = before.most_common(1)[0]
    old_price = router.catalog.get(leader).output_price_per_1m
    time.sleep(0.05)
    _price_file(path, router, leader, 1000.0)
    deadline = time.monotonic() + 10
    while (router.catalog.get(leader).output_price_per_1m == old_price
           and time.monotonic() < deadline):
        time.sleep(0.05)
    assert router.catalog.get(leader).output_price_per_1m == pytest.approx(1000.0 * old_price)
    after = Counter(f"{d.provider}/{d.model}" for d in
                    (router.select(f"say hi {i}", event_id=f"a{i}") for i in range(60)))
    assert before[leader] >= 20 and after[leader] <= before[leader] / 4, (before, after)
    router.close()
    assert not watcher.running

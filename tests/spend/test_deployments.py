"""Deployments, load-balancing strategies, cooldowns, rate limits and thread safety."""

from __future__ import annotations

import doctest
from collections import Counter
from typing import Any

import pytest

from bandit_router.core._deployment import Deployment, DeploymentStatus, LoadBalancingConfig
from bandit_router.core._errors import InvalidInputError, UnknownModelError
from bandit_router.spend import _balancer
from bandit_router.spend._balancer import LoadBalancer
from tests.conftest import run_in_threads

MODEL = "meta/llama-3.1-70b"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def dep(id: str, **kw: Any) -> Deployment:
    kw.setdefault("model", MODEL)
    return Deployment(id=id, provider=kw.pop("provider", id), **kw)


def balancer(*deps: Deployment, clock: Clock | None = None, **cfg: Any) -> LoadBalancer:
    cfg.setdefault("strategy", "round_robin")
    return LoadBalancer(deps or (dep("a"), dep("b"), dep("c")),
                        config=LoadBalancingConfig(**cfg), clock=clock or Clock())


def pick_id(lb: LoadBalancer, draw: float = 0.0, **kw: Any) -> str | None:
    d = lb.pick(MODEL, draw=draw, **kw)
    return None if d is None else d.id


def by_id(lb: LoadBalancer) -> dict[str, DeploymentStatus]:
    return {s.id: s for s in lb.status()}


# --- validation ---------------------------------------------------------------------------------

def test_deployment_round_trips_and_keeps_only_the_key_name() -> None:
    d = dep("tg-1", api_base="https://api.together.xyz/v1", api_key_env="TOGETHER_API_KEY",
            weight=2.5, rpm=60, tpm=10_000)
    assert Deployment.from_dict(d.to_dict()) == d
    assert d.to_dict()["api_key_env"] == "TOGETHER_API_KEY"


@pytest.mark.parametrize("kw", [
    {"id": ""}, {"id": "a" * 65}, {"id": "has space"}, {"id": "a/b"},
    {"model": "no-slash"}, {"model": "/x"}, {"model": "x/"}, {"provider": " "},
    {"api_base": "ftp://x"}, {"api_key_env": "sk-live-abc123"}, {"api_key_env": ""},
    {"weight": 0}, {"weight": -1.0}, {"weight": float("nan")}, {"weight": True},
    {"rpm": 0}, {"tpm": 1.5}, {"rpm": True},
])
def test_deployment_rejects_bad_fields(kw: dict[str, Any]) -> None:
    base: dict[str, Any] = {"id": "ok", "model": MODEL, "provider": "p"}
    with pytest.raises(InvalidInputError):
        Deployment(**(base | kw))


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(InvalidInputError, match="unknown Deployment fields \\['api_key'\\]"):
        Deployment.from_dict({"id": "a", "model": MODEL, "provider": "p", "api_key": "sk-x"})
    with pytest.raises(InvalidInputError, match="provider"):
        Deployment.from_dict({"id": "a", "model": MODEL})
    with pytest.raises(InvalidInputError):
        LoadBalancingConfig.from_dict({"strategy": "weighted", "retries": 2})


@pytest.mark.parametrize("kw", [
    {"strategy": "random"}, {"allowed_fails": 0}, {"allowed_fails": 2.0},
    {"fail_window_s": 0}, {"cooldown_s": -1}, {"cooldown_s": float("inf")},
    {"latency_alpha": 0}, {"latency_alpha": 1.5}, {"busy_timeout_s": 0},
])
def test_config_rejects_bad_values(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        LoadBalancingConfig(**kw)


def test_config_round_trips() -> None:
    cfg = LoadBalancingConfig(strategy="least_busy", allowed_fails=5, latency_alpha=1.0)
    assert LoadBalancingConfig.from_dict(cfg.to_dict()) == cfg


def test_duplicate_ids_and_non_deployments_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="duplicate deployment ids \\['a'\\]"):
        balancer(dep("a"), dep("b"), dep("a", model="x/y"))
    with pytest.raises(InvalidInputError):
        LoadBalancer([{"id": "a"}], config=LoadBalancingConfig())  # type: ignore[list-item]


def test_bad_calls_raise_typed_errors() -> None:
    lb = balancer()
    with pytest.raises(UnknownModelError):
        lb.report("nope")
    with pytest.raises(UnknownModelError):
        lb.pick("other/model", draw=0.0)
    for draw in (1.0, -0.1, float("nan")):
        with pytest.raises(InvalidInputError):
            lb.pick(MODEL, draw=draw)
    with pytest.raises(InvalidInputError):
        lb.pick(MODEL, draw=0.0, tokens=-1)
    with pytest.raises(InvalidInputError):
        lb.report("a", error="exploded")
    with pytest.raises(InvalidInputError):
        lb.report("a", latency_s=-1.0)


def test_models_lists_keys_with_deployments() -> None:
    lb = balancer(dep("a"), dep("b", model="openai/gpt-4o"))
    assert lb.models() == {MODEL, "openai/gpt-4o"}
    assert pick_id(lb) == "a"
    assert lb.pick("openai/gpt-4o", draw=0.3).id == "b"  # type: ignore[union-attr]


# --- strategies ---------------------------------------------------------------------------------

def test_round_robin_cycles_exactly_and_skips_unavailable() -> None:
    lb = balancer(allowed_fails=1)
    assert [pick_id(lb) for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    lb.report("c", error="timeout")
    assert [pick_id(lb) for _ in range(4)] == ["b", "a", "b", "a"]


def test_weighted_shares_follow_the_weights() -> None:
    lb = balancer(dep("a", weight=1), dep("b", weight=3), dep("c", weight=6), strategy="weighted")
    n = 10_000
    counts = Counter(pick_id(lb, draw=(i + 0.5) / n) for i in range(n))
    for key, share in (("a", 0.1), ("b", 0.3), ("c", 0.6)):
        assert abs(counts[key] / n - share) < 0.01
    same = balancer(dep("a"), dep("b"), strategy="weighted")
    assert pick_id(same, draw=0.49) == "a" and pick_id(same, draw=0.5) == "b"


def test_least_latency_tries_untried_first_then_converges_to_fastest() -> None:
    lb = balancer(strategy="least_latency")
    first = [pick_id(lb, ref=f"e{i}") for i in range(3)]
    assert first == ["a", "b", "c"]  # untried first, the least busy of them
    for i, (d, latency) in enumerate([("a", 3.0), ("b", 1.0), ("c", 2.0)]):
        lb.report(d, ref=f"e{i}", latency_s=latency)
    assert [pick_id(lb) for _ in range(5)] == ["b"] * 5
    for _ in range(20):  # b slows down: its EWMA passes c's
        lb.report("b", latency_s=5.0)
    assert pick_id(lb) == "c"
    assert by_id(lb)["a"].ewma_latency_s == 3.0
    lb.report("c", latency_s=0.1, error="timeout")  # errors do not feed the latency
    assert by_id(lb)["c"].ewma_latency_s == 2.0


def test_least_latency_ewma_uses_alpha() -> None:
    lb = balancer(dep("a"), strategy="least_latency", latency_alpha=0.5)
    lb.report("a", latency_s=2.0)
    lb.report("a", latency_s=4.0)
    assert by_id(lb)["a"].ewma_latency_s == pytest.approx(3.0)


def test_least_busy_spreads_and_prefers_freed_deployments() -> None:
    lb = balancer(strategy="least_busy")
    assert [pick_id(lb, ref=f"e{i}") for i in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert [s.in_flight for s in lb.status()] == [2, 2, 2]
    lb.report("b", ref="e1")
    lb.report("b", ref="e4")
    assert pick_id(lb, ref="x") == "b"
    assert pick_id(lb, ref="y") == "b"
    assert pick_id(lb, ref="z") == "a"


def test_in_flight_expires_after_busy_timeout() -> None:
    clock = Clock()
    lb = balancer(clock=clock, strategy="least_busy", busy_timeout_s=30.0)
    pick_id(lb, ref="e1")
    pick_id(lb)
    assert by_id(lb)["a"].in_flight == 1 and by_id(lb)["b"].in_flight == 1
    clock.now += 30.0
    assert [s.in_flight for s in lb.status()] == [0, 0, 0]
    lb.report("a", ref="e1")  # a late report for an expired pick settles nothing, no error
    assert by_id(lb)["a"].in_flight == 0


def test_a_cancelled_pick_frees_its_slot_and_its_rpm() -> None:
    """A decision refused after its pick (a budget re-check) gives the booking back: it is
    not in flight, and it does not count against the deployment's requests per minute."""
    lb = balancer(dep("a", rpm=1), strategy="least_busy")
    assert pick_id(lb, ref="e1") == "a"
    assert pick_id(lb, ref="e2") is None  # the one request a minute is taken
    lb.cancel("a", "e1")
    assert (by_id(lb)["a"].in_flight, by_id(lb)["a"].rpm_used) == (0, 0)
    assert pick_id(lb, ref="e3") == "a"
    lb.cancel("a", "e1")  # twice, or for an unknown id: nothing to give back
    lb.cancel("nobody", "e3")
    assert by_id(lb)["a"].in_flight == 1


# --- health -------------------------------------------------------------------------------------

def test_failing_deployment_cools_down_and_comes_back() -> None:
    clock = Clock()
    lb = balancer(clock=clock, allowed_fails=3, fail_window_s=60.0, cooldown_s=30.0)
    for _ in range(2):
        lb.report("a", error="server_error")
        clock.now += 10.0
    lb.report("a", latency_s=0.5)  # a success does not erase the recent failures
    assert by_id(lb)["a"].healthy and by_id(lb)["a"].recent_failures == 2
    lb.report("a", error="server_error")
    status = by_id(lb)["a"]
    assert not status.healthy and status.cooldown_until == clock.now + 30.0
    assert "a" not in {pick_id(lb) for _ in range(6)}
    lb.report("a", error="rate_limit")  # a late failure while cooling does not extend it
    clock.now += 29.9
    assert [d.id for d in lb.available(MODEL)] == ["b", "c"]
    clock.now += 0.1
    status = by_id(lb)["a"]
    assert status.healthy and status.cooldown_until is None and status.recent_failures == 0
    assert "a" in {pick_id(lb) for _ in range(3)}


def test_failures_spread_beyond_the_window_do_not_cool_down() -> None:
    clock = Clock()
    lb = balancer(clock=clock, allowed_fails=3, fail_window_s=60.0)
    for _ in range(10):
        lb.report("a", error="timeout")
        clock.now += 31.0
    assert by_id(lb)["a"].healthy
    assert by_id(lb)["a"].recent_failures == 1


@pytest.mark.parametrize("error", ["content_filter", "context_length", "invalid_response", "other"])
def test_request_faults_do_not_count(error: str) -> None:
    lb = balancer(allowed_fails=1)
    for _ in range(5):
        lb.report("a", error=error)
    assert by_id(lb)["a"].healthy and by_id(lb)["a"].recent_failures == 0


def test_all_cooling_returns_none() -> None:
    lb = balancer(dep("a"), dep("b"), allowed_fails=1)
    lb.report("a", error="rate_limit")
    lb.report("b", error="server_error")
    assert lb.available(MODEL) == []
    assert lb.pick(MODEL, draw=0.0) is None


# --- rate limits --------------------------------------------------------------------------------

def test_rpm_limit_goes_elsewhere_then_none_then_resets() -> None:
    clock = Clock()
    lb = balancer(dep("a", rpm=2), dep("b", rpm=1), clock=clock, strategy="least_busy")
    assert [pick_id(lb) for _ in range(3)] == ["a", "b", "a"]
    assert pick_id(lb) is None
    assert [(s.rpm_used, s.in_flight) for s in lb.status()] == [(2, 2), (1, 1)]
    clock.now += 59.9
    assert pick_id(lb) is None
    clock.now += 0.1
    assert pick_id(lb) in {"a", "b"}


def test_rpm_window_slides() -> None:
    clock = Clock()
    lb = balancer(dep("a", rpm=2), clock=clock)
    pick_id(lb)
    clock.now += 30.0
    pick_id(lb)
    assert pick_id(lb) is None
    clock.now += 30.0  # the first pick leaves the window, the second stays
    assert pick_id(lb) == "a"
    assert pick_id(lb) is None


def test_tpm_limit_and_actual_token_correction() -> None:
    clock = Clock()
    lb = balancer(dep("a", tpm=1000), dep("b", tpm=500), clock=clock)
    assert pick_id(lb, tokens=600, ref="e1") == "a"
    assert pick_id(lb, tokens=600) is None  # a has 400 left, b only 500
    assert [d.id for d in lb.available(MODEL, tokens=400)] == ["a", "b"]
    lb.report("a", ref="e1", tokens=200)  # actual 200 replaces the estimate 600
    assert by_id(lb)["a"].tpm_used == 200
    assert pick_id(lb, tokens=800) == "a"
    lb.report("b", tokens=450)  # no matching pick: counted as tokens without a request
    assert (by_id(lb)["b"].tpm_used, by_id(lb)["b"].rpm_used) == (450, 0)
    assert lb.available(MODEL, tokens=100) == []
    clock.now += 60.0
    assert [s.tpm_used for s in lb.status()] == [0, 0]
    assert pick_id(lb, tokens=1000) == "a"
    assert lb.pick(MODEL, draw=0.0, tokens=1001) is None  # larger than any tpm: never fits


def test_report_without_ref_settles_the_oldest_anonymous_pick() -> None:
    lb = balancer(dep("a", tpm=1000))
    lb.pick(MODEL, draw=0.0, tokens=300)
    lb.pick(MODEL, draw=0.0, tokens=100)
    lb.report("a", tokens=50)
    status = by_id(lb)["a"]
    assert (status.in_flight, status.tpm_used) == (1, 150)


# --- status, re-configuration, threads ----------------------------------------------------------

def test_status_snapshot() -> None:
    clock = Clock()
    lb = balancer(dep("a", api_base="https://x.example/v1", weight=2.0), dep("b"),
                  clock=clock, allowed_fails=1, cooldown_s=10.0)
    lb.pick(MODEL, draw=0.0, tokens=7, ref="e1")
    lb.report("b", error="server_error")
    a, b = lb.status()
    assert a.to_dict() == {
        "id": "a", "model": MODEL, "provider": "a", "api_base": "https://x.example/v1",
        "weight": 2.0, "healthy": True, "cooldown_until": None, "recent_failures": 0,
        "in_flight": 1, "ewma_latency_s": None, "rpm_used": 1, "tpm_used": 7}
    assert (b.healthy, b.cooldown_until, b.recent_failures) == (False, clock.now + 10.0, 1)


def test_set_deployments_keeps_state_of_remaining_ids() -> None:
    lb = balancer(allowed_fails=1)
    lb.report("a", error="server_error")
    lb.report("b", latency_s=1.5)
    lb.set_deployments([dep("b", weight=4.0), dep("a"), dep("d")],
                       config=LoadBalancingConfig(strategy="least_latency"))
    status = by_id(lb)
    assert list(status) == ["b", "a", "d"]
    assert not status["a"].healthy and status["b"].ewma_latency_s == 1.5
    assert status["b"].weight == 4.0 and status["d"].healthy
    assert pick_id(lb) == "d"  # least_latency now: untried first
    with pytest.raises(UnknownModelError):
        lb.report("c")
    with pytest.raises(InvalidInputError):
        lb.set_deployments([dep("x"), dep("x")])
    assert [s.id for s in lb.status()] == ["b", "a", "d"]  # a failed re-configuration: no change


def test_thread_safety_in_flight_ends_at_zero() -> None:
    lb = balancer(strategy="least_busy", allowed_fails=100)

    def worker(t: int) -> None:
        for i in range(300):
            ref = f"t{t}-{i}"
            d = lb.pick(MODEL, draw=(i % 10) / 10, tokens=5, ref=ref)
            assert d is not None
            lb.report(d.id, ref=ref, latency_s=0.1 * (i % 3),
                      error="timeout" if i % 97 == 0 else None)

    assert run_in_threads(worker, 4) == []
    status = lb.status()
    assert [s.in_flight for s in status] == [0, 0, 0]
    assert sum(s.rpm_used for s in status) == 1200 and sum(s.tpm_used for s in status) == 6000


def test_module_doctests() -> None:
    result = doctest.testmod(_balancer, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 5

"""Budgets: validation, windows, reservations, enforcement, pacing, alerts, shared spend."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from sqlalchemy import create_engine, inspect, text

from bandit_router import (
    Budget,
    BudgetExceededError,
    InvalidInputError,
    Router,
    RouterConfig,
    UnknownModelError,
)
from bandit_router.eval.simulation import SyntheticWorkload
from bandit_router.spend._budgets import window_bounds
from tests.conftest import FakeClock

MIDNIGHT = datetime(2027, 3, 10, tzinfo=UTC).timestamp()


@pytest.fixture
def day_clock() -> FakeClock:
    return FakeClock(MIDNIGHT)


def test_budget_is_validated() -> None:
    for bad in ({"scope": "team-a"}, {"scope": "tenant:"}, {"window": "week"},
                {"limit_usd": -1.0}, {"limit_usd": math.nan}, {"on_exceed": "ignore"},
                {"pacing": "fast"}, {"alert_thresholds": (0.0,)}):
        with pytest.raises(InvalidInputError):
            Budget(**{"limit_usd": 1.0, **bad})  # type: ignore[arg-type]
    assert Budget(limit_usd=1, alert_thresholds=(1.0, 0.5, 0.5)).alert_thresholds == (0.5, 1.0)


def test_set_budget_checks_its_scope_and_limits(make_router: Callable[..., Router]) -> None:
    router = make_router()
    with pytest.raises(InvalidInputError):
        router.set_budget()
    with pytest.raises(UnknownModelError):
        router.set_budget(daily_limit=1.0, scope="provider:nobody")
    with pytest.raises(UnknownModelError):
        router.set_budget(daily_limit=1.0, scope="model:frontier/nothing")
    router.set_budget(daily_limit=1.0, scope="model:frontier/large")
    router.set_budget(hourly_limit=2.0, daily_limit=5.0)
    assert {b.id for b in router.budgets()} == {"model:frontier/large|day", "router|hour",
                                                 "router|day"}
    router.set_budget(daily_limit=7.0)  # a limit left None keeps its setting
    assert {b.id: b.limit_usd for b in router.budgets()}["router|hour"] == 2.0
    assert {b.id: b.limit_usd for b in router.budgets()}["router|day"] == 7.0
    assert router.clear_budget("router", "hour") == 1
    assert router.clear_budget("router") == 1
    assert [b.id for b in router.budgets()] == ["model:frontier/large|day"]


def test_windows_follow_utc_calendar() -> None:
    t = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC).timestamp()
    assert window_bounds("hour", t) == (t - 3599, t + 1)
    assert window_bounds("day", t) == (t - 86399, t + 1)
    start, end = window_bounds("month", t)
    assert datetime.fromtimestamp(start, UTC) == datetime(2027, 2, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2027, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidInputError):
        window_bounds("request", t)


def _spend(router: Router, scope: str = "router", window: str = "day") -> tuple[float, float]:
    status = {s.budget.id: s for s in router.budget_status()}[f"{scope}|{window}"]
    return status.spent_usd, status.reserved_usd


def test_decisions_reserve_and_rewards_settle(make_router: Callable[..., Router],
                                              day_clock: FakeClock) -> None:
    router = make_router(clock=day_clock)
    router.set_budget(daily_limit=100.0)
    a = router.select("Summarise this report", tenant="team-a")
    b = router.select("Translate this letter", tenant="team-a")
    assert _spend(router) == (0.0, pytest.approx(a.estimated_cost_usd + b.estimated_cost_usd))
    router.reward(a.event_id, quality=0.9, cost_usd=0.002)
    spent, reserved = _spend(router)
    assert spent == pytest.approx(0.002)
    assert reserved == pytest.approx(b.estimated_cost_usd)
    # an event that never gets a reward keeps its reservation after the default reward
    day_clock.advance(router.config.reward_wait_s + 1)
    router.process_expired()
    assert _spend(router)[1] == pytest.approx(b.estimated_cost_usd)


def test_per_request_limit_excludes_dear_models(make_router: Callable[..., Router]) -> None:
    router = make_router(config=RouterConfig(cost_weight=0.0))
    cheapest = min(router.catalog, key=lambda s: s.output_price_per_1m)
    router.set_budget(per_request_limit=1e-4)
    for i in range(20):
        d = router.select(f"Write a long essay on topic {i}")
        assert d.estimated_cost_usd <= 1e-4 and d.provider != "frontier"
    router.set_budget(per_request_limit=1e-9)
    with pytest.raises(BudgetExceededError) as info:
        router.select("Write a long essay")
    assert info.value.window == "request" and info.value.resets_at is None
    router.set_budget(per_request_limit=1e-9, on_exceed="cheapest")
    d = router.select("Write a long essay")
    assert (d.provider, d.model) == (cheapest.provider, cheapest.model)
    assert d.probability == 1.0 and "cheapest chosen" in d.reasoning


def test_scopes_apply_only_where_they_should(make_router: Callable[..., Router]) -> None:
    router = make_router(config=RouterConfig(cost_weight=0.0))
    router.set_budget(daily_limit=0.0, scope="tenant:team-b")
    router.set_budget(daily_limit=0.0, scope="provider:frontier")
    router.set_budget(daily_limit=0.0, scope="model:midtier/generalist")
    for i in range(30):
        d = router.select(f"Prove theorem {i}", tenant="team-a")
        assert d.provider != "frontier" and d.model != "generalist"
    with pytest.raises(BudgetExceededError) as info:
        router.select("Prove a theorem", tenant="team-b")
    assert info.value.scope == "tenant:team-b"


def _stream(router: Router, clock: FakeClock, work: SyntheticWorkload, n: int,
            seconds: float) -> dict[str, Any]:
    """Route n tasks spread evenly over ``seconds``, reward each at once."""
    spent, quality, refused, biggest, first_refused = 0.0, [], 0, 0.0, None
    for i, task in enumerate(work.tasks(n)):
        try:
            d = router.select(task.text, event_id=f"s{clock.now:.0f}-{i}")
        except BudgetExceededError:
            refused += 1
            first_refused = i if first_refused is None else first_refused
        else:
            out = work.outcome(task, f"{d.provider}/{d.model}")
            router.reward(d.event_id, quality=out.quality, cost_usd=out.cost_usd)
            spent += out.cost_usd
            biggest = max(biggest, out.cost_usd)
            quality.append(out.quality)
        clock.advance(seconds / n)
    return {"spent": spent, "quality": sum(quality) / max(1, len(quality)),
            "refused": refused, "biggest": biggest, "served": len(quality),
            "first_refused": first_refused}


def test_daily_budget_holds_on_a_stream_three_times_too_dear(
        make_router: Callable[..., Router], day_clock: FakeClock) -> None:
    work = SyntheticWorkload(seed=3)
    probe = work.tasks(400)
    strongest, cheapest = work.strongest, work.cheapest
    strongest_spend = sum(work.outcome(t, strongest).cost_usd for t in probe)
    cheapest_quality = sum(work.mean_quality(t.topic, cheapest) for t in probe) / len(probe)
    router = make_router(clock=day_clock, config=RouterConfig(cost_weight=1.0))
    router.set_budget(daily_limit=strongest_spend / 3)
    day = _stream(router, day_clock, SyntheticWorkload(seed=4), 400, 86_400.0)
    assert day["spent"] <= strongest_spend / 3 + day["biggest"]
    assert day["spent"] >= 0.5 * strongest_spend / 3  # pacing spends the budget, not nothing
    assert day["quality"] >= cheapest_quality + 0.1
    # pacing, not a cliff: the budget lasts most of the day, and the requests it refuses (when
    # what is left affords nothing) are few and at the end (at a base weight this low, seeds
    # refuse 0 to 36 of 400, from request 364 on)
    assert day["refused"] <= 0.1 * 400
    assert day["first_refused"] is None or day["first_refused"] >= 0.85 * 400
    # the window resets at midnight: the next day starts with an empty budget
    assert day_clock.now >= MIDNIGHT + 86_400
    assert _spend(router) == (0.0, 0.0)
    d = router.select("Summarise the quarterly report")
    assert d.cost_weight == pytest.approx(1.0, rel=0.05)  # back at the base weight


def test_pacing_moves_the_cost_weight_and_learning_uses_it(
        make_router: Callable[..., Router], day_clock: FakeClock) -> None:
    router = make_router(clock=day_clock, config=RouterConfig(cost_weight=10.0))
    day_clock.advance(43_200)  # noon: half the day has elapsed
    router.set_budget(daily_limit=1.0, pacing="target")
    router.set_budget(daily_limit=1.0, pacing="target", scope="tenant:other")  # not ours
    lazy = router.select("Explain entropy")  # nothing spent by noon: weight falls
    # gain 50 x (0 used - 0.5 elapsed) = -25, clipped to -8
    assert lazy.cost_weight == pytest.approx(10.0 * math.exp(-8.0), rel=1e-6)
    router.reward(lazy.event_id, quality=0.5, cost_usd=0.9)  # 90% used at 50% of the day
    eager = router.select("Explain enthalpy")
    assert eager.cost_weight == pytest.approx(10.0 * math.exp(8.0), rel=1e-6)  # clipped
    assert "paced" in eager.reasoning
    receipt = router.reward(eager.event_id, quality=0.8, cost_usd=0.001)
    assert receipt.reward == pytest.approx(0.8 - eager.cost_weight * 0.001)
    record = router.get_event(eager.event_id)
    assert record.cost_weight == eager.cost_weight and record.arm == ""  # no experiment
    router.set_budget(daily_limit=100.0, pacing="cap")  # far under pace: cap never lowers
    assert router.select("Explain enthalpy again").cost_weight == 10.0


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


def test_alerts_fire_once_per_threshold_and_reach_the_webhook(
        make_router: Callable[..., Router], day_clock: FakeClock, webhook: str) -> None:
    config = RouterConfig(cost_weight=0.0, alert_webhook_url=webhook)
    first = make_router(clock=day_clock, config=config)
    second = make_router(clock=day_clock, config=config)  # another process on the database
    first.set_budget(daily_limit=0.01, pacing="off", on_exceed="cheapest")
    for i in range(40):
        router = first if i % 2 else second
        d = router.select(f"Write a report on item {i}")
        router.reward(d.event_id, quality=0.7, cost_usd=0.001)
    alerts = first.budget_alerts()
    assert [a.threshold for a in alerts] == [0.5, 0.8, 1.0]
    assert all(a.scope == "router" and a.window == "day" for a in alerts)
    deadline = threading.Event()
    for _ in range(50):
        if len(_Hook.received) >= 3:
            break
        deadline.wait(0.1)
    assert sorted(p["threshold"] for p in _Hook.received) == [0.5, 0.8, 1.0]
    assert {p["type"] for p in _Hook.received} == {"budget_alert"}


_CHILD = """
import sys
from bandit_router import Router, RouterConfig, BudgetExceededError
from bandit_router.eval.simulation import HashEmbedder, demo_catalog
router = Router(database_url=sys.argv[1], catalog=demo_catalog(), embedder=HashEmbedder(),
                config=RouterConfig(cost_weight=0.0))
print("ready", flush=True)
sys.stdin.readline()  # start together with the parent
served = 0
for i in range(int(sys.argv[2])):
    try:
        d = router.select(f"child task {i} about databases")
    except BudgetExceededError:
        continue
    router.reward(d.event_id, quality=0.8, cost_usd=d.estimated_cost_usd)
    served += 1
    if served == 1:  # one request each before they race, however the two are scheduled
        print("first", flush=True)
        sys.stdin.readline()
print(served)
"""


def test_threads_sharing_commits_never_overspend_a_budget(
        make_router: Callable[..., Router]) -> None:
    """Decisions from many threads on one SQLite file share commits (group commit); each
    reservation still re-reads the budget inside the shared transaction, after the ones
    before it, so together they stay within the limit."""
    router = make_router(config=RouterConfig(cost_weight=0.0))
    limit = 0.01
    router.set_budget(daily_limit=limit, pacing="off")
    writes = router.store._writes
    before = (writes.groups, writes.writes)
    refused = [0] * 8

    def decide(k: int) -> None:
        for i in range(30):
            try:
                router.select(f"thread {k} task {i} about databases")
            except BudgetExceededError:
                refused[k] += 1

    threads = [threading.Thread(target=decide, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    groups, held = writes.groups - before[0], writes.writes - before[1]
    assert held > groups  # some decisions did share a commit
    assert sum(refused) > 0
    engine = create_engine(router.store.url)
    with engine.connect() as conn:
        reserved, events = conn.execute(text(
            "SELECT SUM(reserved_usd), COUNT(*) FROM br_events")).one()
    engine.dispose()
    assert events == 240 - sum(refused)
    assert reserved <= limit + 1e-9


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_processes_share_one_budget(backend: str, sqlite_url: str,
                                        request: pytest.FixtureRequest) -> None:
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("pg_url")
    from bandit_router.eval.simulation import HashEmbedder, demo_catalog

    router = Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                    config=RouterConfig(cost_weight=0.0))
    limit = 0.02
    router.set_budget(daily_limit=limit, pacing="off")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url, "150"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "first"  # the child was served once
    biggest = 0.0
    for i in range(150):
        try:
            d = router.select(f"parent task {i} about networks")
            router.reward(d.event_id, quality=0.8, cost_usd=d.estimated_cost_usd)
            biggest = max(biggest, d.estimated_cost_usd)
        except BudgetExceededError:
            pass
        if i == 0:  # and the parent once: now they race for the rest of the budget
            child.stdin.write("go\n")
            child.stdin.flush()
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0 and int(out.strip()) > 0
    engine = create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT SUM(cost_usd) FROM br_rewards")).scalar_one()
        events = conn.execute(text("SELECT COUNT(*) FROM br_events")).scalar_one()
    engine.dispose()
    assert events > 0
    # both processes drew on one budget: together they stay within it, not a request over
    # (each reservation re-reads the budget once it holds the write lock or row lock)
    assert total <= limit + 1e-9
    assert biggest > 0
    assert total >= 0.8 * limit
    assert _spend(router)[0] == pytest.approx(total)
    router.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_reservation_rechecks_what_another_decision_spent_meanwhile(
        backend: str, make_router: Callable[..., Router], day_clock: FakeClock,
        request: pytest.FixtureRequest) -> None:
    """Two routers plan a decision on the same spend; the second to write its reservation
    finds the budget broken by the first and is refused, its decision rolled back (on
    PostgreSQL the re-check's lock and reads are pipelined, the refusal raised between)."""
    from bandit_router import Constraints

    url = {} if backend == "sqlite" else {"database_url": request.getfixturevalue("pg_url")}
    only = Constraints(allowed_models=["frontier/large"])
    first, second = make_router(clock=day_clock, **url), make_router(clock=day_clock, **url)
    cost = make_router(database_url="sqlite://").select(
        "Plan the migration", constraints=only).estimated_cost_usd
    first.set_budget(daily_limit=1.5 * cost, pacing="off")  # room for one decision
    first.set_load_balancing("least_busy", providers=[
        {"id": "host-a", "model": "frontier/large", "provider": "host-a"}])
    write = first.store.add_event

    def meanwhile(row: Any, *, also: Any = None) -> None:
        # the first planned with nothing spent; the second decides and commits first
        second.select("Plan the migration", constraints=only, event_id="second")
        write(row, also=also)

    first.store.add_event = meanwhile  # type: ignore[method-assign]
    with pytest.raises(BudgetExceededError) as refused:
        first.select("Plan the migration", constraints=only, event_id="first")
    assert refused.value.limit_usd == pytest.approx(1.5 * cost)
    assert first.store.get_event("first") is None and first.store.get_event("second")
    assert _spend(first) == (0.0, pytest.approx(cost))  # one reservation, not two
    # the deployment booked for the refused decision is free again
    assert [(d.id, d.in_flight) for d in first.deployment_status()] == [("host-a", 0)]
    first.store.add_event = write  # type: ignore[method-assign]
    with pytest.raises(BudgetExceededError):  # planned on the spend as it is now
        first.select("Plan the migration", constraints=only)


def test_older_database_gets_the_new_columns(sqlite_url: str,
                                             make_router: Callable[..., Router]) -> None:
    make_router().close()
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # as a database of schema 1, before migrations, looked
        conn.execute(text("DROP TABLE br_alembic_version"))
        conn.execute(text("DROP INDEX IF EXISTS ix_br_events_tenant"))
        conn.execute(text("ALTER TABLE br_events DROP COLUMN tenant"))
        conn.execute(text("ALTER TABLE br_events DROP COLUMN reserved_usd"))
        conn.execute(text("ALTER TABLE br_checkpoints DROP COLUMN manifest"))  # revision 0002
        conn.execute(text("DROP TABLE br_observations"))  # revision 0003
        conn.execute(text("ALTER TABLE br_rewards DROP COLUMN held_back"))  # revision 0004
        conn.execute(text("DROP TABLE br_cooldowns"))  # revision 0005
        conn.execute(text("DROP INDEX ix_br_rewards_received_at"))  # revision 0006
        conn.execute(text("DROP TABLE br_memory_pages"))  # revision 0007
    engine.dispose()
    router = make_router()
    indexes = {ix["name"] for ix in inspect(router.store.engine).get_indexes("br_events")}
    assert "ix_br_events_tenant" in indexes  # the migrated column is indexed as a new one is
    router.set_budget(daily_limit=1.0)
    d = router.select("Still works", tenant="t1")
    router.reward(d.event_id, quality=1.0, cost_usd=0.001)
    assert _spend(router)[0] == pytest.approx(0.001)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_usage_sums_each_scope_over_its_hour_day_and_month(
        backend: str, sqlite_url: str, request: pytest.FixtureRequest) -> None:
    """The budgets' read before a decision: spent plus reserved of each scope asked, per
    window, one statement however many scopes (1 to 3 here); other scopes and older
    buckets left out."""
    from bandit_router.core._sql import write
    from bandit_router.core._store import Store
    from bandit_router.spend._budgets import Ledger, bucket_of

    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(url)
    ledger = Ledger(store)
    now = MIDNIGHT + 86400 * 3 + 3600 * 5 + 60  # the 13th, 05:01 UTC
    spends = [  # (scope, hours before now, reserved, spent)
        ("router", 0, 1.0, 2.0), ("router", 2, 0.0, 4.0), ("router", 24 * 2, 8.0, 0.0),
        ("router", 24 * 14, 16.0, 0.0),  # last month
        ("tenant:a", 0, 0.5, 0.0), ("tenant:a", 3, 0.0, 0.25), ("tenant:b", 0, 32.0, 0.0)]
    for scope, hours, reserved, spent in spends:
        write(store.engine, lambda s, scope=scope, hours=hours, reserved=reserved,
              spent=spent: ledger.add(s, [scope], bucket_of(now - 3600 * hours),
                                      reserved=reserved, spent=spent, requests=1))
    assert ledger.usage(["router"], now) == {
        ("router", "hour"): 3.0, ("router", "day"): 7.0, ("router", "month"): 15.0}
    both = ledger.usage(["tenant:a", "router", "tenant:a", "model:none"], now)
    assert both == {("router", "hour"): 3.0, ("router", "day"): 7.0,
                    ("router", "month"): 15.0, ("tenant:a", "hour"): 0.5,
                    ("tenant:a", "day"): 0.75, ("tenant:a", "month"): 0.75}
    assert ledger.usage([], now) == {}
    store.close()

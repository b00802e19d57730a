"""Cost reports (bandit_router.eval.reports) on real traffic: a real Router on SQLite, two UTC days,
two teams, rewarded, defaulted and pending decisions, and warm-start history to leave out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from bandit_router import Constraints, InvalidInputError, Router
from bandit_router.core._store import EventRow, Store
from bandit_router.eval.datasets import synthetic_dataset
from bandit_router.eval.reports import GROUPS, TOTAL, CostReport, CostRow, cost_report, parse_time
from tests.conftest import FakeClock

DAY1, DAY2 = "2027-01-15", "2027-01-16"  # FakeClock starts at 1.8e9 s = 2027-01-15T08:00Z
STRONGEST = "frontier/large"  # the demo catalog's strongest model: the logged reference


@dataclass(frozen=True)
class Logged:
    """One live decision and what the test knows about it."""

    event_id: str
    day: str
    model: str
    key: str
    reported: float | None  # the reported cost; None: pending or defaulted
    quality: float | None  # None: no (non-default) reward
    estimate: float  # the cost estimated (and reserved) at decision time
    reference: float  # the logged reference (strongest) model's estimated cost
    tiny: float | None  # budget/tiny's estimated cost, where it was eligible
    status: str


# (day, tenant, allowed models (None: all), reward: (quality, cost, error) or None)
_PLAN: list[tuple[int, str | None, set[str] | None, tuple[float, float, str | None] | None]] = [
    (1, "team-a", {"frontier/large"}, (0.9, 0.010, None)),
    (1, "team-b", {"budget/tiny"}, (0.5, 0.0002, None)),
    (1, "team-a", {"opencode/coder"}, None),  # defaulted on day 2 (reward wait over)
    (2, "team-a", {"budget/tiny"}, (0.7, 0.0004, None)),
    (2, "team-b", {"opencode/coder"}, None),  # pending
    (2, None, {"midtier/generalist"}, (0.0, 0.0003, "timeout")),  # a failed call: quality 0
    (2, None, None, None),  # every model eligible; pending
]


def build_traffic(router: Router, clock: FakeClock, *, history: bool = True) -> list[Logged]:
    """The decisions of ``_PLAN`` (warm-start history first, on day 1 too)."""
    if history:
        assert router.warm_start(synthetic_dataset(8, seed=1)) > 0
    ids = []
    for i, (day, tenant, allowed, reward) in enumerate(_PLAN):
        if day == 2 and clock.now < 1_800_000_000.0 + 86_400:
            clock.advance(86_400)
        constraints = Constraints(allowed_models=frozenset(allowed)) if allowed else None
        d = router.select(f"Write a Python function number {i} that sorts a list",
                          constraints=constraints, tenant=tenant)
        if reward is not None:
            q, c, err = reward
            router.reward(d.event_id, quality=None if err else q, cost_usd=c, error=err)
        ids.append(d.event_id)
    out = []
    for event_id, (day, tenant, _, reward) in zip(ids, _PLAN, strict=True):
        event = router.store.get_event(event_id)
        assert event is not None and event.reserved_usd is not None
        tiny = next((a["estimate"]["cost_usd"] for a in event.actions
                     if a["key"] == "budget/tiny"), None)
        out.append(Logged(event_id=event_id, day=DAY1 if day == 1 else DAY2,
                          model=event.model_key, key=tenant or "-",
                          reported=reward[1] if reward else None,
                          quality=reward[0] if reward else None,
                          estimate=event.reserved_usd, reference=event.reference_cost_usd,
                          tiny=tiny, status=event.status))
    return out


@pytest.fixture
def traffic(make_router: Callable[..., Router],
            clock: FakeClock) -> tuple[Router, list[Logged]]:
    router = make_router(clock=clock)
    return router, build_traffic(router, clock)


def _expected(logged: list[Logged], by: tuple[str, ...],
              ref: Callable[[Logged], float] = lambda e: e.reference) -> dict[tuple[str, ...],
                                                                          dict[str, Any]]:
    """The figures per group, computed the plain way."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for e in logged:
        values = {"day": e.day, "model": e.model, "provider": e.model.split("/")[0],
                  "key": e.key}
        g = out.setdefault(tuple(values[n] for n in by),
                           {"requests": 0, "rewarded": 0, "reported": 0.0, "estimated": 0.0,
                            "q": [], "ref": 0.0})
        g["requests"] += 1
        if e.reported is not None:
            g["rewarded"] += 1
            g["reported"] += e.reported
            g["q"].append(e.quality)
        else:
            g["estimated"] += e.estimate
        g["ref"] += ref(e)
    return out


def _check(report: CostReport, logged: list[Logged], by: tuple[str, ...],
           ref: Callable[[Logged], float] = lambda e: e.reference) -> None:
    want = _expected(logged, by, ref)
    assert [tuple(str(r.group(n)) for n in by) for r in report.rows] == sorted(want)
    for row in report.rows:
        w = want[tuple(str(row.group(n)) for n in by)]
        assert row.requests == w["requests"] and row.rewarded == w["rewarded"]
        assert row.pending + row.defaulted == w["requests"] - w["rewarded"]
        assert row.reported_usd == pytest.approx(w["reported"], rel=1e-12)
        assert row.estimated_usd == pytest.approx(w["estimated"], rel=1e-12)
        assert row.spend_usd == pytest.approx(w["reported"] + w["estimated"], rel=1e-12)
        assert row.reference_cost_usd == pytest.approx(w["ref"], rel=1e-12)
        assert row.savings_usd == pytest.approx(w["ref"] - row.spend_usd, rel=1e-9)
        assert row.savings_pct == pytest.approx(100 * row.savings_usd / w["ref"], rel=1e-9)
        if w["q"]:
            assert row.mean_quality == pytest.approx(sum(w["q"]) / len(w["q"]))
        else:
            assert row.mean_quality is None
        for name in GROUPS:
            assert (row.group(name) is None) == (name not in by)
    t = report.total
    assert t.requests == len(logged) == sum(r.requests for r in report.rows)
    assert t.spend_usd == pytest.approx(sum(e.reported if e.reported is not None
                                            else e.estimate for e in logged), rel=1e-12)
    assert t.reference_cost_usd == pytest.approx(sum(ref(e) for e in logged), rel=1e-12)
    assert (t.day, t.model, t.provider, t.key) == (None, None, None, None)


def test_the_traffic_is_what_the_test_thinks(traffic: tuple[Router, list[Logged]]) -> None:
    router, logged = traffic
    assert [e.model for e in logged[:6]] == ["frontier/large", "budget/tiny", "opencode/coder",
                                             "budget/tiny", "opencode/coder",
                                             "midtier/generalist"]
    assert [e.status for e in logged] == ["rewarded", "rewarded", "defaulted", "rewarded",
                                          "pending", "rewarded", "pending"]
    assert all(e.estimate > 0 and e.reference > 0 for e in logged)
    assert [e.tiny is not None for e in logged] == [False, True, False, True, False, False,
                                                    True]
    with router.store.session() as s:  # warm-start history is in the log, on day 1 too
        history = s.query(EventRow).filter(EventRow.status == "history").all()
    assert len(history) == 8 * 5 and {parse_time(DAY1) <= h.created_at < parse_time(DAY2)
                                      for h in history} == {True}


@pytest.mark.parametrize("by", [("day", "model"), ("day",), ("model",), ("provider",), ("key",),
                                ("day", "key"), ("key", "provider", "day", "model")])
def test_sums_per_group(traffic: tuple[Router, list[Logged]], by: tuple[str, ...]) -> None:
    router, logged = traffic
    report = cost_report(router, group_by=by)
    assert report.group_by == by
    _check(report, logged, by)


def test_exact_figures_per_day_and_key(traffic: tuple[Router, list[Logged]]) -> None:
    router, e = traffic
    by_key = {r.key: r for r in cost_report(router, group_by=["key"]).rows}
    assert set(by_key) == {"team-a", "team-b", "-"}
    a, b, none = by_key["team-a"], by_key["team-b"], by_key["-"]
    assert (a.requests, a.rewarded, a.pending, a.defaulted) == (3, 2, 0, 1)
    assert a.reported_usd == pytest.approx(0.010 + 0.0004)
    assert a.estimated_usd == e[2].estimate  # the defaulted decision counts its estimate
    assert (b.requests, b.rewarded, b.pending, b.defaulted) == (2, 1, 1, 0)
    assert b.spend_usd == pytest.approx(0.0002 + e[4].estimate)  # pending: its estimate
    assert (none.requests, none.rewarded, none.pending) == (2, 1, 1)
    assert none.spend_usd == pytest.approx(0.0003 + e[6].estimate)
    assert none.mean_quality == 0.0  # the failed call
    assert a.mean_quality == pytest.approx(0.8)
    by_day = {r.day: r for r in cost_report(router, group_by="day").rows}
    assert set(by_day) == {DAY1, DAY2}  # the history (day 1) adds nothing
    assert by_day[DAY1].requests == 3 and by_day[DAY2].requests == 4
    assert by_day[DAY1].spend_usd == pytest.approx(0.010 + 0.0002 + e[2].estimate)
    assert by_day[DAY1].reference_cost_usd == pytest.approx(sum(x.reference for x in e[:3]))
    day2 = cost_report(router, group_by=("day", "model")).rows
    # rows come sorted by group; the last decision (every model eligible) may pick any model
    assert [(r.day, r.model) for r in day2 if r.day == DAY2] == [
        (DAY2, m) for m in sorted({x.model for x in e[3:]})]
    assert {"budget/tiny", "midtier/generalist", "opencode/coder"} <= {r.model for r in day2}


def test_savings_and_quality_against_the_logged_strongest(
        traffic: tuple[Router, list[Logged]]) -> None:
    router, e = traffic
    report = cost_report(router)
    t = report.total
    spend = 0.010 + 0.0002 + e[2].estimate + 0.0004 + e[4].estimate + 0.0003 + e[6].estimate
    reference = sum(x.reference for x in e)
    assert t.spend_usd == pytest.approx(spend)
    assert t.savings_usd == pytest.approx(reference - spend)
    assert t.savings_pct == pytest.approx(100 * (1 - spend / reference))
    assert report.reference_model == STRONGEST and not report.reference_named
    assert report.reference_fallbacks == 0
    assert report.reference_quality == pytest.approx(0.9)  # e[0], routed to frontier/large
    assert report.reference_quality_n == 1 and report.reference_quality_source == "measured"
    assert report.routed_quality == pytest.approx((0.9 + 0.5 + 0.7 + 0.0) / 4)
    assert report.quality_kept == pytest.approx(0.525 / 0.9)


def test_reference_override_reads_the_logged_estimates(
        traffic: tuple[Router, list[Logged]]) -> None:
    router, e = traffic
    report = cost_report(router, group_by=("day", "key"), reference="budget/tiny")
    assert report.reference_model == "budget/tiny" and report.reference_named
    # eligible (so estimated) in e[1], e[3] (routed to it) and e[6] (everything eligible)
    assert report.reference_fallbacks == 4

    def ref(x: Logged) -> float:
        return x.tiny if x.tiny is not None else x.reference

    _check(report, e, ("day", "key"), ref)
    assert report.reference_quality == pytest.approx(0.6)  # e[1] and e[3]
    assert report.reference_quality_n == 2
    assert report.quality_kept == pytest.approx(0.525 / 0.6)
    # a model never routed to is not measured
    never = cost_report(router, group_by=(), reference="openlang/polyglot")
    assert never.reference_quality is None and never.quality_kept is None
    assert never.reference_quality_source == "not measured"
    assert "not measured" in never.to_table()
    assert never.reference_fallbacks == 6  # eligible only in e[6]


def test_period(traffic: tuple[Router, list[Logged]]) -> None:
    router, e = traffic
    day2 = cost_report(router, since=parse_time(DAY2), group_by=("day", "model"))
    _check(day2, [x for x in e if x.day == DAY2], ("day", "model"))
    day1 = cost_report(router, until=parse_time(DAY1, end=True))
    _check(day1, [x for x in e if x.day == DAY1], ("day", "model"))
    assert day1.until == parse_time(DAY2)
    empty = cost_report(router, since=parse_time("2030-01-01"), group_by=("key",))
    assert empty.rows == () and empty.total.requests == 0 and empty.total.spend_usd == 0.0
    assert empty.total.savings_pct is None and empty.routed_quality is None
    assert empty.reference_model == STRONGEST  # the router's catalog says so


def test_totals_only(traffic: tuple[Router, list[Logged]]) -> None:
    router, e = traffic
    report = cost_report(router, group_by=())
    assert report.rows == () and report.total.requests == len(e)
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert len(rows) == 2 and rows[0][0] == "requests" and rows[1][0] == str(len(e))


def test_csv_parses_back_to_the_same_numbers(traffic: tuple[Router, list[Logged]]) -> None:
    router, _ = traffic
    report = cost_report(router, group_by=("day", "model", "key"))
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report.rows) + 1
    assert list(rows[0]) == ["day", "model", "key", "requests", "rewarded", "pending",
                             "defaulted", "spend_usd", "reported_usd", "estimated_usd",
                             "mean_quality", "reference_cost_usd", "savings_usd", "savings_pct"]
    assert {rows[-1][g] for g in ("day", "model", "key")} == {TOTAL}
    for parsed, row in zip(rows, (*report.rows, report.total), strict=True):
        for g in ("day", "model", "key"):
            assert parsed[g] == (getattr(row, g) or TOTAL)
        for name in ("requests", "rewarded", "pending", "defaulted"):
            assert int(parsed[name]) == getattr(row, name)
        for name in ("spend_usd", "reported_usd", "estimated_usd", "reference_cost_usd",
                     "savings_usd"):
            assert float(parsed[name]) == getattr(row, name)  # exact: written in full
        for name in ("mean_quality", "savings_pct"):
            value = getattr(row, name)
            assert parsed[name] == "" if value is None else float(parsed[name]) == value
    assert any(r["mean_quality"] == "" for r in rows)  # pending-only groups have no quality


def test_json_round_trips(traffic: tuple[Router, list[Logged]]) -> None:
    router, _ = traffic
    for report in (cost_report(router, group_by=("day", "key")),
                   cost_report(router, group_by=("provider",), reference="budget/tiny",
                               since=parse_time(DAY1), until=parse_time(DAY2, end=True))):
        text = report.to_json()
        data = json.loads(text)
        assert data == report.to_dict()
        assert CostReport.from_json(text) == report
        assert data["rows"][0].keys() >= set(report.group_by)
        assert not set(data["rows"][0]) & (set(GROUPS) - set(report.group_by))
        assert data["total"]["requests"] == report.total.requests
    assert data["period"] == {"since": "2027-01-15T00:00:00Z", "until": "2027-01-17T00:00:00Z"}


def test_history_is_not_traffic(make_router: Callable[..., Router], clock: FakeClock) -> None:
    router = make_router(clock=clock)
    router.warm_start(synthetic_dataset(5, seed=2))
    report = cost_report(router, group_by=("day", "model"))
    assert report.rows == () and report.total.requests == 0
    assert report.reference_quality is None  # history outcomes are not measurements


def test_a_store_reports_like_its_router(traffic: tuple[Router, list[Logged]],
                                          sqlite_url: str) -> None:
    router, _ = traffic
    store = Store(sqlite_url)
    try:
        assert cost_report(store, group_by=("day", "key")) == cost_report(router,
                                                                          group_by="day,key")
    finally:
        store.close()


def test_events_without_a_reservation_use_the_logged_estimate(
        traffic: tuple[Router, list[Logged]]) -> None:
    router, e = traffic
    before = cost_report(router, group_by=("key",))
    with router.store.session() as s:  # as logged before schema 2
        s.execute(update(EventRow).where(EventRow.id.in_([e[4].event_id, e[0].event_id]))
                  .values(reserved_usd=None, tenant=None))
    after = {r.key: r for r in cost_report(router, group_by=("key",)).rows}
    assert after["team-b"].estimated_usd == 0.0
    assert after["-"].estimated_usd == pytest.approx(e[6].estimate + e[4].estimate)
    assert after["-"].requests == 4
    assert sum(r.spend_usd for r in after.values()) == pytest.approx(before.total.spend_usd)


def test_bad_input(traffic: tuple[Router, list[Logged]]) -> None:
    router, _ = traffic
    for kwargs in ({"group_by": ("week",)}, {"group_by": "day,day"}, {"group_by": "day,nope"},
                   {"since": 10.0, "until": 10.0}, {"since": 20.0, "until": 10.0},
                   {"since": float("nan")}, {"until": float("inf")}, {"since": -1.0},
                   {"since": True}, {"reference": "tiny"}, {"reference": "budget/"},
                   {"reference": "unknown/model"}):
        with pytest.raises(InvalidInputError):
            cost_report(router, **kwargs)
    with pytest.raises(InvalidInputError):
        CostRow().group("week")
    for text in ("", "yesterday", "2027-13-01", "nan", "1e400", "9999-12-31T23:59:60",
                 "-5"):
        with pytest.raises(InvalidInputError):
            parse_time(text)
    with pytest.raises(InvalidInputError):
        parse_time("9999-12-31", end=True)


def test_parse_time() -> None:
    assert parse_time(DAY1) == 1_799_971_200.0
    assert parse_time(DAY1, end=True) == parse_time(DAY2)
    assert parse_time("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert parse_time("2027-01-15T09:00:00+01:00") == 1_800_000_000.0
    assert parse_time("2027-01-15T08:00:00") == 1_800_000_000.0  # naive: UTC
    assert parse_time("2027-01-15T08:00:00", end=True) == 1_800_000_000.0
    assert parse_time(" 1800000000 ") == 1_800_000_000.0


def test_table(traffic: tuple[Router, list[Logged]]) -> None:
    router, _ = traffic
    text = cost_report(router, group_by=("day", "key")).to_table()
    assert "reference: frontier/large" in text
    assert "0.900 measured on 1 request(s)" in text and "kept 58.3%" in text
    lines = text.splitlines()
    assert lines[-1].startswith(TOTAL) and sum(DAY2 in line for line in lines) == 3
    named = cost_report(router, group_by=("key",), reference="budget/tiny").to_table()
    assert "reference: budget/tiny (4 request(s) where it was not eligible" in named

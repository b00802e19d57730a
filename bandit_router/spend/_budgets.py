"""Budgets: spend limits per hour, day, month and request, enforced and paced at select time.

A :class:`Budget` caps what one *scope* may spend in one *window*:

- scopes: ``"router"`` (all traffic), ``"tenant:<id>"`` (one API key or team, as passed to
  ``select(tenant=...)``; the HTTP service passes the API key id), ``"provider:<name>"`` and
  ``"model:<provider/model>"``;
- windows: ``"hour"``, ``"day"`` and ``"month"`` reset on UTC calendar boundaries (a daily
  budget starts afresh at 00:00 UTC, as LiteLLM's ``budget_duration`` does); ``"request"``
  caps the estimated cost of each single request.

Spend is real and shared: every decision reserves its estimated cost in the database, in the
same transaction that logs it, and its reward replaces the reservation with the reported cost
in the same transaction that stores the reward. A decision that never gets a reward keeps its
reservation (the call was presumably made). Every process on one database therefore sees one
spend. Usage is kept in hourly buckets per scope, so reading it costs one indexed query.

At select time, models whose estimated cost would break a limit are excluded; if none is
left, the budget's ``on_exceed`` decides: ``"error"`` raises :class:`BudgetExceededError`,
``"cheapest"`` routes to the cheapest eligible model anyway. Budgets of the ``router`` and
``tenant`` scopes also *pace* spend: the cost weight of the request is multiplied by
``exp(gain * (used / limit - elapsed share of the window))``, an exponentiated-gradient
(mirror) dual ascent on the budget constraint whose accumulated gradient is exactly the
overspend against the even-rate line, so it needs no state beyond the shared spend. With
``pacing="cap"`` (default) the weight only rises when spend runs ahead of pace; with
``pacing="target"`` it also falls when spend lags, spending the budget on quality;
``pacing="off"`` leaves only the hard limit. Because the router pins the cost coefficient,
a moving weight changes decisions at once and never corrupts what VW learned.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Integer,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core._errors import InvalidInputError
from ..core._sql import DriverStatement, Writer, read
from ..core._store import Store
from ..core._tables import AlertRow, BudgetRow, SpendRow, json_dumps
from ..core._validation import storable

__all__ = ["WINDOWS", "Budget", "BudgetAlert", "BudgetStatus", "Ledger", "event_scopes",
           "window_bounds"]

Window = Literal["hour", "day", "month", "request"]
WINDOWS: tuple[str, ...] = ("hour", "day", "month", "request")
_SCOPE_KINDS = ("tenant:", "provider:", "model:")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidInputError(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """A spend limit of one scope over one window (see the module docstring).

    >>> Budget(scope="router", window="day", limit_usd=10.0).id
    'router|day'
    """

    scope: str = "router"
    window: Window = "day"
    limit_usd: float
    on_exceed: Literal["error", "cheapest"] = "error"
    pacing: Literal["cap", "target", "off"] = "cap"
    alert_thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)

    def __post_init__(self) -> None:
        _check(storable(self.scope, max_chars=300)
               and (self.scope == "router"
                    or any(self.scope.startswith(k) and len(self.scope) > len(k)
                           for k in _SCOPE_KINDS)),
               "budget scope must be 'router', 'tenant:<id>', 'provider:<name>' or "
               f"'model:<provider/model>' (up to 300 characters, no NUL), got {self.scope!r}")
        _check(self.window in WINDOWS, f"budget window must be one of {WINDOWS}")
        limit = self.limit_usd
        _check(not isinstance(limit, bool) and isinstance(limit, int | float)
               and math.isfinite(limit) and 0 <= limit <= 1e9,
               "budget limit_usd must be a number in [0, 1e9]")
        _check(self.on_exceed in ("error", "cheapest"), "on_exceed must be 'error' or 'cheapest'")
        _check(self.pacing in ("cap", "target", "off"), "pacing must be 'cap', 'target' or 'off'")
        thresholds = tuple(self.alert_thresholds)
        _check(all(not isinstance(t, bool) and isinstance(t, int | float) and 0 < t <= 10
                   for t in thresholds), "alert_thresholds must be numbers in (0, 10]")
        object.__setattr__(self, "alert_thresholds", tuple(sorted(set(thresholds))))

    @property
    def id(self) -> str:
        return f"{self.scope}|{self.window}"

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "window": self.window, "limit_usd": self.limit_usd,
                "on_exceed": self.on_exceed, "pacing": self.pacing,
                "alert_thresholds": list(self.alert_thresholds)}


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetStatus:
    """Where a budget stands now: rewarded spend, reservations of decisions still waiting
    for their reward, and the window."""

    budget: Budget
    spent_usd: float
    reserved_usd: float
    requests: int
    window_start: float | None
    resets_at: float | None
    cost_weight_multiplier: float

    @property
    def used_usd(self) -> float:
        return self.spent_usd + self.reserved_usd

    @property
    def fraction(self) -> float:
        limit = self.budget.limit_usd
        return self.used_usd / limit if limit > 0 else (math.inf if self.used_usd else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {**self.budget.to_dict(), "spent_usd": self.spent_usd,
                "reserved_usd": self.reserved_usd, "used_usd": self.used_usd,
                "fraction": self.fraction if math.isfinite(self.fraction) else None,
                "requests": self.requests, "window_start": self.window_start,
                "resets_at": self.resets_at,
                "cost_weight_multiplier": self.cost_weight_multiplier}


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetAlert:
    """A budget passed one of its alert thresholds in one window (stored once)."""

    scope: str
    window: str
    threshold: float
    window_start: float
    used_usd: float
    limit_usd: float
    created_at: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "budget_alert", "scope": self.scope, "window": self.window,
                "threshold": self.threshold, "window_start": self.window_start,
                "used_usd": self.used_usd, "limit_usd": self.limit_usd,
                "created_at": self.created_at, **self.details}


def window_bounds(window: str, now: float) -> tuple[float, float]:
    """The UTC calendar window containing ``now``: ``(start, end)`` in Unix seconds.

    >>> window_bounds("day", 86400 * 3 + 5)
    (259200.0, 345600.0)
    """
    t = datetime.fromtimestamp(now, tz=UTC)
    if window == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        return start.timestamp(), start.timestamp() + 3600.0
    if window == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), start.timestamp() + 86400.0
    if window == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = calendar.monthrange(t.year, t.month)[1]
        return start.timestamp(), start.timestamp() + 86400.0 * days
    raise InvalidInputError(f"window {window!r} has no calendar bounds")


def event_scopes(model_key: str, tenant: str | None) -> list[str]:
    """Every scope one decision's spend counts against."""
    provider = model_key.split("/", 1)[0]
    scopes = ["router", f"provider:{provider}", f"model:{model_key}"]
    if tenant:
        scopes.append(f"tenant:{tenant}")
    return scopes


#: First key of the two-key advisory locks on budget scopes ("br", arbitrary and fixed)
_SCOPE_LOCKS = 0x6272


#: What a budget counts of an hour's spend row: what was spent and what is still reserved.
_USED = SpendRow.reserved_usd + SpendRow.spent_usd


class Ledger:
    """The budget tables of one database: definitions, hourly spend, alerts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # statements built once: building SQLAlchemy expressions per call costs milliseconds
        self._upsert: Any = None
        if store.dialect in ("sqlite", "postgresql"):
            ins = (sqlite.insert(SpendRow) if store.dialect == "sqlite"
                   else postgresql.insert(SpendRow))
            self._upsert = DriverStatement(
                ins.on_conflict_do_update(
                    index_elements=["scope", "bucket"],
                    set_={"reserved_usd": SpendRow.reserved_usd + ins.excluded.reserved_usd,
                          "spent_usd": SpendRow.spent_usd + ins.excluded.spent_usd,
                          "requests": SpendRow.requests + ins.excluded.requests}),
                store.engine.dialect,
                keys=["scope", "bucket", "reserved_usd", "spent_usd", "requests"],
                dumps=json_dumps)
        # PostgreSQL: decisions that re-check a scope's budget take its lock first (see
        # SpendGuard.reserve); the hourly rows alone do not serialise two decisions that
        # write different hours (at an hour's turn, or clocks apart) of one day's budget
        self._lock_scope = (DriverStatement(
            select(func.pg_advisory_xact_lock(literal(_SCOPE_LOCKS, Integer),
                                              func.hashtext(bindparam("scope")))),
            store.engine.dialect, keys=[], dumps=json_dumps)
            if store.dialect == "postgresql" else None)
        self._used = DriverStatement(
            select(func.coalesce(func.sum(_USED), 0.0))
            .where(SpendRow.scope == bindparam("scope"), SpendRow.bucket >= bindparam("start")),
            store.engine.dialect, keys=[], dumps=json_dumps)
        #: the usage read (see :meth:`usage`), by how many scopes it reads
        self._usage: dict[int, DriverStatement] = {}

    def _usage_statement(self, scopes: int) -> DriverStatement:
        """Spent plus reserved per scope for the hour, day and month from their first
        buckets, for ``scopes`` scopes named ``scope_0``, ... (a statement per count: an
        expanding ``IN`` is compiled again on every call)."""
        stmt = self._usage.get(scopes)
        if stmt is None:
            stmt = self._usage[scopes] = DriverStatement(
                select(SpendRow.scope,
                       *[func.sum(case((SpendRow.bucket >= bindparam(f"{w}_start"), _USED),
                                       else_=0.0)) for w in ("hour", "day", "month")])
                .where(SpendRow.scope.in_([bindparam(f"scope_{i}") for i in range(scopes)]),
                       SpendRow.bucket >= bindparam("month_start"))
                .group_by(SpendRow.scope),
                self.store.engine.dialect, keys=[], dumps=json_dumps)
        return stmt

    # -- definitions ---------------------------------------------------------------------------
    def put(self, budgets: Sequence[Budget], now: float) -> None:
        with self.store.session() as s:
            for b in budgets:
                row = s.get(BudgetRow, b.id)
                if row is None:
                    s.add(BudgetRow(id=b.id, definition=b.to_dict(), updated_at=now))
                else:
                    row.definition, row.updated_at = b.to_dict(), now

    def delete(self, ids: Iterable[str]) -> int:
        with self.store.session() as s:
            n = 0
            for bid in ids:
                row = s.get(BudgetRow, bid)
                if row is not None:
                    s.delete(row)
                    n += 1
            return n

    def load(self) -> list[Budget]:
        with self.store.read_session() as s:  # one read (every BUDGET_REFRESH_S)
            rows = s.scalars(select(BudgetRow).order_by(BudgetRow.id)).all()
            return [Budget(**{**r.definition,
                              "alert_thresholds": tuple(r.definition["alert_thresholds"])})
                    for r in rows]

    # -- spend ---------------------------------------------------------------------------------
    def add(self, s: Writer, scopes: Sequence[str], bucket: int, *, reserved: float = 0.0,
            spent: float = 0.0, requests: int = 0) -> None:
        """Add to the hourly spend of each scope, inside the caller's transaction (one
        prepared upsert, executed for all scopes at once)."""
        rows = [{"scope": scope, "bucket": bucket, "reserved_usd": reserved,
                 "spent_usd": spent, "requests": requests} for scope in scopes]
        if self._upsert is not None:
            self._upsert.executemany(s, rows)
            return
        for values in rows:  # portable fallback: update, else insert
            done = s.execute(update(SpendRow)
                             .where(SpendRow.scope == values["scope"],
                                    SpendRow.bucket == bucket)
                             .values(reserved_usd=SpendRow.reserved_usd + reserved,
                                     spent_usd=SpendRow.spent_usd + spent,
                                     requests=SpendRow.requests + requests))
            if not getattr(done, "rowcount", 0):
                s.execute(insert(SpendRow), values)

    def usage(self, scopes: Iterable[str], now: float) -> dict[tuple[str, str], float]:
        """Spent plus reserved per ``(scope, window)`` for the current hour, day and month,
        in one query."""
        names = sorted(set(scopes))
        if not names:
            return {}
        values: dict[str, Any] = {f"{w}_start": bucket_of(window_bounds(w, now)[0])
                                  for w in ("hour", "day", "month")}
        values.update((f"scope_{i}", name) for i, name in enumerate(names))
        stmt = self._usage_statement(len(names))
        out: dict[tuple[str, str], float] = {}
        # one read: no ORM session, no transaction (on SQLite the raw connection, see read())
        for scope, hour, day, month in read(self.store.reads,
                                            lambda conn: stmt.rows(conn, values)):
            out[(scope, "hour")] = float(hour or 0.0)
            out[(scope, "day")] = float(day or 0.0)
            out[(scope, "month")] = float(month or 0.0)
        return out

    def lock(self, s: Writer, scopes: Iterable[str]) -> None:
        """Hold each scope's budget lock until the caller's transaction ends (PostgreSQL;
        elsewhere the first write already serialises writers). Sorted: no deadlocks."""
        if self._lock_scope is not None:  # nothing read: pipelined, they go with the next read
            for scope in sorted(set(scopes)):
                self._lock_scope.run(s, {"scope": scope})

    def used(self, s: Writer, windows: Sequence[tuple[str, str]], now: float) -> list[float]:
        """Spent plus reserved of each ``(scope, window)`` in the window holding ``now``,
        read inside the caller's transaction (so it counts what the transaction itself
        wrote): every read sent, then every result read (pipelined: one round trip)."""
        sent = [self._used.send(s, {"scope": scope,
                                    "start": bucket_of(window_bounds(window, now)[0])})
                for scope, window in windows]
        return [float(one.result() or 0.0) for one in sent]

    def window_totals(self, scope: str, window: str, now: float) -> tuple[float, float, int]:
        """(spent, reserved, requests) of one scope in the current window."""
        start = bucket_of(window_bounds(window, now)[0])
        with self.store.session() as s:
            row = s.execute(select(func.sum(SpendRow.spent_usd), func.sum(SpendRow.reserved_usd),
                                   func.sum(SpendRow.requests))
                            .where(SpendRow.scope == scope, SpendRow.bucket >= start)).one()
        return float(row[0] or 0.0), float(row[1] or 0.0), int(row[2] or 0)

    # -- alerts --------------------------------------------------------------------------------
    def add_alert(self, alert: BudgetAlert, budget_id: str) -> bool:
        """Store an alert; False if this threshold already fired in this window (anywhere)."""
        try:
            with self.store.session() as s:
                s.add(AlertRow(budget_id=budget_id, window_start=alert.window_start,
                               threshold=alert.threshold, created_at=alert.created_at,
                               payload=alert.to_dict()))
            return True
        except IntegrityError:
            return False

    def alerts(self, since: float = 0.0) -> list[BudgetAlert]:
        with self.store.session() as s:
            rows = s.scalars(select(AlertRow).where(AlertRow.created_at >= since)
                             .order_by(AlertRow.id)).all()
            out = []
            for r in rows:
                p = dict(r.payload)
                out.append(BudgetAlert(
                    scope=p.pop("scope"), window=p.pop("window"), threshold=p.pop("threshold"),
                    window_start=p.pop("window_start"), used_usd=p.pop("used_usd"),
                    limit_usd=p.pop("limit_usd"), created_at=p.pop("created_at"),
                    details={k: v for k, v in p.items() if k != "type"}))
            return out


def bucket_of(ts: float) -> int:
    return int(ts // 3600)


def now() -> float:
    return time.time()

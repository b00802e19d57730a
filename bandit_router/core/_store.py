"""Durable state through SQLAlchemy: the event log, rewards, checkpoints and price updates.

The reward table is the learning log: its ``seq`` orders learning, and a unique constraint on
``event_id`` makes "the earliest reward wins" hold across processes sharing one database.
Every write commits before the call that made it returns.

Readers tail the log by ``seq``, so rewards must become visible in ``seq`` order. SQLite
gives that for free (one writer at a time, ``seq`` drawn inside the write transaction). On
PostgreSQL a sequence value is drawn at insert time but seen at commit, so two transactions
could commit out of order and a reader that had moved past the later ``seq`` would never see
the earlier one; reward writes therefore take a transaction-scoped advisory lock first, which
makes commit order equal ``seq`` order.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import (
    Double,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from ._schema import migrate
from ._sql import DriverStatement, GroupCommit, Writer, driver_ok, open_engine, read
from ._tables import (
    AlertRow,
    BudgetRow,
    CheckpointRow,
    ClusterRow,
    CooldownRow,
    EventConflict,
    EventRow,
    LearnItem,
    MemoryPageRow,
    ObservationRow,
    PriceRow,
    RewardConflict,
    RewardRow,
    SpendRow,
    _column_defaults,
    _row_values,
    json_dumps,
    new_row,
)

# the table rows are defined in ``_tables`` and re-exported here, where callers use them
__all__ = ["AlertRow", "BudgetRow", "CheckpointRow", "ClusterRow", "CooldownRow", "EventConflict",
           "EventRow", "LearnItem", "MemoryPageRow", "Observation", "ObservationRow", "PriceRow",
           "RewardConflict", "RewardRow", "SpendRow", "Store", "json_dumps", "new_row"]

#: pg_advisory_xact_lock key serialising reward writes (arbitrary, fixed: "bandit-r")
_REWARD_LOCK = 0x62616E646974
#: Pending events this process logged, kept so that rewarding one needs no read.
_RECENT_EVENTS = 1024


class Observation(NamedTuple):
    """What a decision's call was observed to cost and take (:meth:`Store.get_observation`)."""

    cost_usd: float | None
    latency_s: float | None
    output_tokens: int | None


def _columns(row: Any) -> dict[str, Any]:
    """A mapped row's column values by attribute name, leaving out the ones not set (an
    autoincrement key), as an executemany of ``insert()`` takes them."""
    state = row.__dict__
    return {attr.key: state[attr.key] for attr in type(row).__mapper__.column_attrs
            if attr.key in state}


class Store:
    """The router's database. Any SQLAlchemy URL; SQLite gets WAL and full fsync.
    ``timeout_s`` bounds a call's wait for a lock (SQLite) or a connection (PostgreSQL);
    PostgreSQL connections are checked before use, so a restarted server is reconnected to."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.engine: Engine = open_engine(url, timeout_s=timeout_s, json_serializer=json_dumps,
                                          json_deserializer=orjson.loads)
        self.dialect = self.engine.dialect.name
        migrate(self.engine)  # the newest schema, by Alembic (see ``_schema``)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: single-statement reads: on PostgreSQL in autocommit, so a read is its statement's
        #: round trip alone (no BEGIN before it, no ROLLBACK after it, which would also make
        #: psycopg drop the connection's prepared statements)
        self.reads: Engine = (self.engine.execution_options(isolation_level="AUTOCOMMIT")
                              if self.dialect == "postgresql" else self.engine)
        self._read_sessions = sessionmaker(self.reads, expire_on_commit=False)
        # the hot writes, compiled once and run on the driver's cursor (see ``_sql``)
        events, rewards = EventRow.__table__, RewardRow.__table__
        assert isinstance(events, Table) and isinstance(rewards, Table)
        self._event_columns = _column_defaults(events)
        self._reward_columns = [(k, d) for k, d in _column_defaults(rewards) if k != "seq"]
        dialect = self.engine.dialect
        self.integrity_errors: tuple[type[Exception], ...] = (IntegrityError,)
        if driver_ok(dialect):
            self.integrity_errors += (dialect.loaded_dbapi.IntegrityError,)
        reward_insert: Any = insert(rewards)
        if self.dialect == "postgresql":
            reward_insert = reward_insert.returning(rewards.c.seq)
        self._insert_event = DriverStatement(
            insert(events), dialect, keys=[k for k, _ in self._event_columns],
            dumps=json_dumps, json=DriverStatement.json_columns(events))
        self._insert_reward = DriverStatement(
            reward_insert, dialect, keys=[k for k, _ in self._reward_columns], dumps=json_dumps)
        self._lock_statement = (DriverStatement(
            select(func.pg_advisory_xact_lock(bindparam("key"))), dialect, keys=[],
            dumps=json_dumps) if self.dialect == "postgresql" else None)
        self._mark_event = DriverStatement(
            update(events).where(events.c.id == bindparam("event_id_"))
            .values(status=bindparam("status_")), dialect, keys=[], dumps=json_dumps)
        event_attrs, reward_attrs = (EventRow.__mapper__.column_attrs,
                                     RewardRow.__mapper__.column_attrs)
        self._event_attrs = [a.key for a in event_attrs]
        self._reward_attrs = [a.key for a in reward_attrs]
        self._event_and_reward = (
            select(*[a.columns[0].label(f"e_{a.key}") for a in event_attrs],
                   *[a.columns[0].label(f"r_{a.key}") for a in reward_attrs])
            .select_from(events.outerjoin(rewards, rewards.c.event_id == events.c.id))
            .where(events.c.id == bindparam("event_id")))
        observations = ObservationRow.__table__
        assert isinstance(observations, Table)
        self._observation = DriverStatement(
            select(observations.c.cost_usd, observations.c.latency_s,
                   observations.c.output_tokens)
            .where(observations.c.event_id == bindparam("event_id")),
            dialect, keys=[], dumps=json_dumps)
        prices = PriceRow.__table__
        assert isinstance(prices, Table)
        self._price_columns = [c.key for c in prices.columns]
        self._prices_after = DriverStatement(
            select(prices).where(prices.c.id > bindparam("after_id")).order_by(prices.c.id),
            dialect, keys=[], dumps=json_dumps)
        self._observed_cost = DriverStatement(  # -1: observed, without a cost
            select(func.coalesce(observations.c.cost_usd, -1.0))
            .where(observations.c.event_id == bindparam("event_id")),
            dialect, keys=[], dumps=json_dumps)
        self._recent: OrderedDict[str, EventRow] = OrderedDict()
        self._recent_lock = threading.Lock()
        #: decisions and rewards written concurrently share commits (see ``_sql``); on
        #: PostgreSQL rewards only, each group behind the reward lock, taken once
        self._writes = GroupCommit(self.engine)
        self._reward_writes = self._writes
        if self._lock_statement is not None:
            lock, key = self._lock_statement, {"key": _REWARD_LOCK}
            self._reward_writes = GroupCommit(self.engine,
                                              first=lambda conn: lock.run(conn, key))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def read_session(self) -> Session:
        """A session for one read statement (PostgreSQL: in autocommit, see :attr:`reads`);
        use it as a context manager."""
        return self._read_sessions()

    def close(self) -> None:
        self.engine.dispose()

    # -- events ------------------------------------------------------------------------------
    def add_event(self, row: EventRow, *,
                  also: Callable[[Writer], None] | None = None) -> None:
        """Log a decision (and run ``also`` in the same transaction, e.g. a budget
        reservation); :class:`EventConflict` if its id is taken."""
        values = _row_values(row, self._event_columns)

        def work(conn: Writer) -> None:
            self._insert_event.execute(conn, values)
            if also is not None:
                also(conn)
        try:
            self._writes.run(work)
        except self.integrity_errors as exc:
            raise EventConflict(row.id) from exc
        if row.status == "pending":
            with self._recent_lock:
                self._recent[row.id] = row
                if len(self._recent) > _RECENT_EVENTS:
                    self._recent.popitem(last=False)

    def recent_event(self, event_id: str) -> EventRow | None:
        """An event this store logged lately and has not seen rewarded, without a read:
        ``None`` when it is not at hand (then read it). An event never changes but for its
        status; whether it has a reward by now is left to the reward's unique constraint."""
        with self._recent_lock:
            return self._recent.get(event_id)

    def get_event(self, event_id: str) -> EventRow | None:
        with self._sessions() as s:
            return s.get(EventRow, event_id)

    def get_event_and_reward(self, event_id: str) -> tuple[EventRow | None, RewardRow | None]:
        """An event and its reward, if any, in one query: a prepared Core select whose row
        becomes detached ORM rows (a reward whose event is not at hand reads this, on the hot
        path: about a quarter of the ORM query's time)."""
        with self.reads.connect() as conn:
            row = conn.execute(self._event_and_reward, {"event_id": event_id}).first()
        if row is None:
            return None, None
        values = row._mapping
        event = new_row(EventRow, **{k: values[f"e_{k}"] for k in self._event_attrs})
        if values["r_seq"] is None:
            return event, None
        return event, new_row(RewardRow, **{k: values[f"r_{k}"] for k in self._reward_attrs})

    def observe(self, row: ObservationRow, *,
                also: Callable[[Writer], None] | None = None) -> None:
        """Record (or replace) what an event's call cost and took, and run ``also`` (settling
        its spend) in the same transaction, before the observation is written (so ``also``
        reads the one it replaces). :class:`RewardConflict` if the event is no longer
        pending (rewarded meanwhile, or given its default reward)."""
        with self.session() as s:
            self._lock_rewards(s)
            # a write first: on SQLite it takes the write lock, so the reads below are current
            pending = s.execute(update(EventRow)
                                .where(EventRow.id == row.event_id, EventRow.status == "pending")
                                .values(status="pending"))
            if not getattr(pending, "rowcount", 0):
                raise RewardConflict(row.event_id)
            if also is not None:
                also(s.connection())
            s.merge(row)

    def observed(self, conn: Writer, event_id: str) -> tuple[bool, float | None]:
        """Whether an event was observed, and the cost its observation recorded (``None``
        when it recorded none), read in the caller's transaction."""
        cost = self._observed_cost.execute(conn, {"event_id": event_id})
        if cost is None:
            return False, None
        return True, (None if float(cost) < 0 else float(cost))

    def get_observation(self, event_id: str) -> Observation | None:
        """What an event's call was observed to cost and take, if it was. A reward without
        its cost or tokens asks, on the hot path: not the ORM (340 us) nor Core (60 us
        alone, three times that after another connection's commit) but, on SQLite, the
        raw connection (``_sql.read``)."""
        rows = read(self.reads, lambda conn: self._observation.rows(conn, {"event_id": event_id}))
        return Observation(*rows[0]) if rows else None

    # -- deployment health shared by every process ----------------------------------------------
    def add_cooldown(self, deployment_id: str, until: float, now: float) -> None:
        """Record that ``deployment_id`` is cooling down until ``until`` (and prune the
        cooldowns that ended over an hour ago)."""
        with self.session() as s:
            s.add(CooldownRow(deployment_id=deployment_id, cooldown_until=until, created_at=now))
            s.execute(delete(CooldownRow).where(CooldownRow.cooldown_until < now - 3600.0))

    def cooldowns(self, now: float) -> dict[str, float]:
        """Every deployment some process has cooling down at ``now``: its latest end."""
        with self.reads.connect() as conn:
            rows = conn.execute(select(CooldownRow.deployment_id,
                                       func.max(CooldownRow.cooldown_until))
                                .where(CooldownRow.cooldown_until > now)
                                .group_by(CooldownRow.deployment_id)).all()
        return {str(d): float(u) for d, u in rows}

    def get_reward(self, event_id: str) -> RewardRow | None:
        with self._sessions() as s:
            return s.scalars(select(RewardRow).where(RewardRow.event_id == event_id)).first()

    def _lock_rewards(self, s: Session | Connection) -> None:
        if self.dialect == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REWARD_LOCK})

    def add_reward(self, row: RewardRow, *, status: str,
                   also: Callable[[Writer], None] | None = None) -> int:
        """Write a reward and mark its event (and run ``also`` in the same transaction, e.g.
        settling the budget reservation); returns the reward's ``seq``."""
        values = _row_values(row, self._reward_columns)
        marked = {"event_id_": row.event_id, "status_": status}

        def work(conn: Writer) -> Any:  # (on PostgreSQL after the reward lock)
            inserted = self._insert_reward.send(conn, values)
            try:
                self._mark_event.run(conn, marked)
                if also is not None:
                    also(conn)
                return inserted.result()  # read last: pipelined, one round trip brings all
            finally:
                inserted.close()
        try:
            key = self._reward_writes.run(work)
        except self.integrity_errors as exc:
            raise RewardConflict(row.event_id) from exc
        finally:
            with self._recent_lock:
                self._recent.pop(row.event_id, None)
        assert key is not None
        row.seq = int(key)
        return row.seq

    def add_history(self, pairs: list[tuple[EventRow, RewardRow]]) -> list[int]:
        """Log decisions and their rewards together, in order, in one transaction: the events
        in one executemany, then the rewards in another, one row after the other, so that
        ``seq`` follows the given order. Returns the rewards' seqs, in that order."""
        if not pairs:
            return []
        with self.session() as s:
            self._lock_rewards(s)
            s.execute(insert(EventRow), [_columns(e) for e, _ in pairs])
            seqs = s.execute(insert(RewardRow).returning(RewardRow.seq,
                                                         sort_by_parameter_order=True),
                             [_columns(r) for _, r in pairs]).scalars().all()
        return list(seqs)

    def add_default_rewards(self, *, before: float, now: float, reward: float,
                            limit: int = 5000) -> int:
        """Give up to ``limit`` pending events created before ``before`` the default reward,
        in one statement; events rewarded meanwhile, by anyone, are left alone."""
        with self.session() as s:
            self._lock_rewards(s)
            rewarded = select(RewardRow.seq).where(RewardRow.event_id == EventRow.id).exists()
            # what the call was observed to cost and take (the gateway's), else cost 0
            seen = ObservationRow
            due = (select(EventRow.id, literal(now, Double), literal(0.0, Double),
                          func.coalesce(seen.cost_usd, literal(0.0, Double)), seen.latency_s,
                          seen.output_tokens, literal(reward, Double), literal(True))
                   .outerjoin(seen, seen.event_id == EventRow.id)
                   .where(EventRow.status == "pending", EventRow.created_at < before,
                          ~rewarded)
                   .order_by(EventRow.created_at).limit(limit))
            s.execute(insert(RewardRow).from_select(
                ["event_id", "received_at", "quality", "cost_usd", "latency_s", "output_tokens",
                 "reward", "is_default"], due))
            marked = s.execute(update(EventRow)
                               .where(EventRow.status == "pending",
                                      select(RewardRow.seq)
                                      .where(RewardRow.event_id == EventRow.id,
                                             RewardRow.is_default.is_(True)).exists())
                               .values(status="defaulted").returning(EventRow.id))
            return len(marked.all())

    def learn_log(self, after_seq: int, limit: int = 5000,
                  arm: str | None = None) -> list[LearnItem]:
        """Rewards with ``seq > after_seq``, in order, joined with their events (only those
        of one experiment ``arm`` when given)."""
        with self.read_session() as s:
            query = (select(RewardRow, EventRow).join(EventRow, RewardRow.event_id == EventRow.id)
                     .where(RewardRow.seq > after_seq))
            if arm is not None:
                # through a function, so that no planner walks the arm's index (every event of
                # the arm, each pass: 10 ms at 5,000 events on SQLite) instead of the seqs after
                # ``after_seq``; arm is never NULL, so the rows are the same
                query = query.where(func.coalesce(EventRow.arm, "") == arm)
            query = query.order_by(RewardRow.seq).limit(limit)
            return [LearnItem(r, e) for r, e in s.execute(query).all()]

    def embeddings(self, seqs: npt.NDArray[np.int64], *, dim: int,
                   chunk: int = 500) -> npt.NDArray[np.float32]:
        """The task embeddings of the events rewarded as ``seqs``, in that order: how a
        checkpoint's memory gets its vectors back from the log (``chunk`` seqs a query).
        ``KeyError`` when one is missing or not ``dim`` wide."""
        out = np.empty((len(seqs), dim), np.float32)
        position = {int(q): i for i, q in enumerate(seqs.tolist())}
        if len(position) != len(seqs):
            raise KeyError("the memory names a reward twice")
        wanted = list(position)
        found = 0
        with self._sessions() as s:
            for k in range(0, len(wanted), chunk):
                rows = s.execute(select(RewardRow.seq, EventRow.embedding)
                                 .join(EventRow, RewardRow.event_id == EventRow.id)
                                 .where(RewardRow.seq.in_(wanted[k:k + chunk])))
                for seq, blob in rows:
                    vec = np.frombuffer(blob, np.float32)
                    if vec.shape[0] != dim:
                        raise KeyError(f"reward {seq}: embedding of {vec.shape[0]} floats")
                    out[position[seq]] = vec
                    found += 1
        if found != len(seqs):
            raise KeyError(f"{len(seqs) - found} of the memory's rewards are not in the log")
        return out

    # -- checkpoints ---------------------------------------------------------------------------
    def add_checkpoint(self, row: CheckpointRow, *, keep: int = 2,
                       pages: list[MemoryPageRow] | None = None,
                       keep_pages: tuple[str, int] | None = None) -> None:
        """Store ``row`` and prune the arm's checkpoints to the newest ``keep``, in one
        transaction with the memory ``pages`` sealed for it. With ``keep_pages`` ``(code_key,
        first_seq)`` the arm's pages of another key, or wholly before ``first_seq`` (rows the
        memory has dropped), are deleted."""
        with self.session() as s:
            s.add(row)
            s.add_all(pages or [])
            s.flush()
            old = s.scalars(select(CheckpointRow.id).where(CheckpointRow.arm == row.arm)
                            .order_by(CheckpointRow.id.desc()).offset(keep)).all()
            if old:  # one statement: a row another replica pruned first is no error
                s.execute(delete(CheckpointRow).where(CheckpointRow.id.in_(old))
                          .execution_options(synchronize_session=False))
            if keep_pages is not None:
                key, first_seq = keep_pages
                s.execute(delete(MemoryPageRow).where(
                    MemoryPageRow.arm == row.arm,
                    (MemoryPageRow.code_key != key) | (MemoryPageRow.last_seq < first_seq))
                          .execution_options(synchronize_session=False))

    # -- memory pages --------------------------------------------------------------------------
    def memory_pages(self, arm: str, code_key: str) -> list[tuple[int, int, int]]:
        """``(id, first_seq, last_seq)`` of the arm's pages of ``code_key``, by first seq,
        without their codes."""
        with self.reads.connect() as conn:
            rows = conn.execute(select(MemoryPageRow.id, MemoryPageRow.first_seq,
                                       MemoryPageRow.last_seq)
                                .where(MemoryPageRow.arm == arm,
                                       MemoryPageRow.code_key == code_key)
                                .order_by(MemoryPageRow.first_seq)).all()
        return [(int(i), int(a), int(b)) for i, a, b in rows]

    def memory_page(self, page_id: int) -> MemoryPageRow | None:
        """One page, whole; None when it has been pruned meanwhile."""
        with self._sessions() as s:
            return s.get(MemoryPageRow, page_id)

    def newest_checkpoint(self, arm: str = "") -> tuple[int, int] | None:
        """(id, rewards learned) of the newest checkpoint of ``arm``, without its blobs."""
        with self.reads.connect() as conn:
            row = conn.execute(select(CheckpointRow.id, CheckpointRow.learned)
                               .where(CheckpointRow.arm == arm)
                               .order_by(CheckpointRow.id.desc()).limit(1)).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def checkpoint(self, checkpoint_id: int) -> CheckpointRow | None:
        """One checkpoint, whole; None when it has been pruned meanwhile."""
        with self._sessions() as s:
            return s.get(CheckpointRow, checkpoint_id)

    def checkpoints(self, arm: str = "") -> list[CheckpointRow]:
        """Newest first."""
        with self._sessions() as s:
            return list(s.scalars(select(CheckpointRow).where(CheckpointRow.arm == arm)
                                  .order_by(CheckpointRow.id.desc())))

    # -- task clusters -------------------------------------------------------------------------
    def clusters(self, arm: str, key: str) -> ClusterRow | None:
        with self._sessions() as s:
            return s.get(ClusterRow, (arm, key))

    def add_clusters(self, row: ClusterRow) -> ClusterRow:
        """Store ``row`` unless another process stored codebooks for its arm and key first;
        returns the stored one."""
        try:
            with self.session() as s:
                s.add(row)
        except IntegrityError:
            pass
        stored = self.clusters(row.arm, row.key)
        assert stored is not None
        return stored

    def arm_outcomes(self, arm: str) -> list[tuple[float, float, float | None, float]]:
        """(quality, cost, latency, reward) of an arm's rewarded decisions (no defaults)."""
        with self._sessions() as s:
            rows = s.execute(select(RewardRow.quality, RewardRow.cost_usd, RewardRow.latency_s,
                                    RewardRow.reward)
                             .join(EventRow, RewardRow.event_id == EventRow.id)
                             .where(EventRow.arm == arm, RewardRow.is_default.is_(False),
                                    EventRow.status != "history")).all()
        return [(float(q), float(c), None if lat is None else float(lat), float(r))
                for q, c, lat, r in rows]

    # -- prices --------------------------------------------------------------------------------
    def add_prices(self, rows: list[PriceRow]) -> None:
        with self.session() as s:
            s.add_all(rows)

    def prices(self, after_id: int = 0) -> list[PriceRow]:
        """The price changes after ``after_id``, in order. Every :meth:`Router.sync` asks
        (the service's learner: after each batch of rewards), and there is seldom one: a
        read on the raw connection on SQLite (``_sql.read``), not an ORM session."""
        rows = read(self.reads, lambda conn: self._prices_after.rows(conn, {"after_id": after_id}))
        return [new_row(PriceRow, **dict(zip(self._price_columns, row, strict=True)))
                for row in rows]

    # -- statistics ----------------------------------------------------------------------------
    def stats_by_model(self, *, since: float | None = None) -> list[dict[str, Any]]:
        """Per model: decisions, rewarded decisions, mean quality, cost and reward, spend;
        with ``since`` (Unix seconds), over the decisions made since then only, read through
        the index on their time rather than the whole log."""
        traffic = _traffic(since)
        # grouped by an expression no index serves: grouped by the column, SQLite walks the
        # model index to save a sort, so reads every decision instead of the window's
        model = func.coalesce(EventRow.model_key, "")
        with self._sessions() as s:
            decided = dict(s.execute(select(model, func.count())
                                     .where(traffic).group_by(model)).all())
            rows = s.execute(
                select(model, func.count(), func.avg(RewardRow.quality),
                       func.avg(RewardRow.cost_usd), func.sum(RewardRow.cost_usd),
                       func.avg(RewardRow.reward), func.sum(EventRow.reference_cost_usd),
                       func.avg(RewardRow.latency_s))
                .join(RewardRow, RewardRow.event_id == EventRow.id)
                .where(RewardRow.is_default.is_(False), traffic)
                .group_by(model)).all()
        rewarded = {r[0]: r for r in rows}
        out = []
        for key in sorted(set(decided) | set(rewarded)):
            r = rewarded.get(key)
            out.append({
                "model_key": key, "decisions": int(decided.get(key, 0)),
                "rewarded": int(r[1]) if r else 0,
                "mean_quality": float(r[2]) if r else None,
                "mean_cost_usd": float(r[3]) if r else None,
                "spend_usd": float(r[4]) if r else 0.0,
                "mean_reward": float(r[5]) if r else None,
                "reference_cost_usd": float(r[6]) if r else 0.0,
                "mean_latency_s": float(r[7]) if r and r[7] is not None else None,
            })
        return out

    def count_events(self, *, since: float | None = None) -> dict[str, int]:
        """Decisions by status (warm-start history left out), since ``since`` if given."""
        traffic = _traffic(since)
        status = func.coalesce(EventRow.status, "")  # (as in :meth:`stats_by_model`)
        with self._sessions() as s:
            return {str(name): int(n) for name, n in
                    s.execute(select(status, func.count()).where(traffic).group_by(status))}


def _traffic(since: float | None) -> ColumnElement[bool]:
    """The decisions the statistics count: live traffic (not warm-start history), made since
    ``since`` when given."""
    traffic = EventRow.status != "history"
    return traffic if since is None else and_(traffic, EventRow.created_at >= since)


def now() -> float:
    return time.time()

"""Hot writes on the raw DBAPI cursor (``bandit_router.core._sql``), against SQLAlchemy Core.

Every test runs on SQLite and PostgreSQL, with the driver path on and off: both paths must
write the same rows, roll back together and report the same conflicts.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bandit_router import InvalidInputError
from bandit_router.core import _sql
from bandit_router.core._sql import DriverStatement, GroupCommit, Writer
from bandit_router.core._store import (
    EventConflict,
    EventRow,
    RewardConflict,
    RewardRow,
    Store,
    json_dumps,
    new_row,
)


def event(i: int) -> EventRow:
    return new_row(EventRow, id=f"e{i}", created_at=float(i), status="pending",
                   task_hash="0" * 64, task_text=None, embedder="x",
                   embedding=bytes(range(8)), context={"T": {"math": 1.0}, "K": {"c4_1": 1.0}},
                   actions=[{"key": "p/m", "features": {"A": {"cost": 0.125}}, "n": 2**40}],
                   chosen=0, model_key="p/m", probability=0.25, pmf=[0.25, 0.75],
                   cost_weight=1.5, latency_weight=0.0, input_tokens=3, reference_key="p/m",
                   reference_cost_usd=0.01, constraints={"max_cost_usd": None},
                   policy_version=7, meta={"user": "ü"}, tenant="t1", reserved_usd=0.002)


def reward(i: int) -> RewardRow:
    return new_row(RewardRow, event_id=f"e{i}", received_at=2.0, quality=0.5, cost_usd=0.001,
                   latency_s=None, output_tokens=12, error=None, reward=0.4,
                   is_default=False)


@pytest.fixture(params=[("sqlite", True), ("sqlite", False), ("postgres", True),
                        ("postgres", False)],
                ids=["sqlite-driver", "sqlite-core", "postgres-driver", "postgres-core"])
def store(request: pytest.FixtureRequest, sqlite_url: str,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    database, driver = request.param
    if not driver:
        monkeypatch.setattr(_sql, "_DRIVERS", set())
    url = sqlite_url if database == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(url)
    assert s._insert_event.enabled is driver
    yield s
    s.close()


def test_rows_read_back_as_written(store: Store) -> None:
    store.add_event(event(1))
    seq = store.add_reward(reward(1), status="rewarded")
    store.add_event(event(2))
    assert store.add_reward(reward(2), status="rewarded") == seq + 1
    (item, _) = store.learn_log(0)
    written = event(1)
    for column in ("id", "created_at", "embedding", "context", "actions", "chosen", "pmf",
                   "cost_weight", "constraints", "policy_version", "meta", "tenant",
                   "reserved_usd", "probability"):
        assert getattr(item.event, column) == getattr(written, column), column
    assert item.event.status == "rewarded" and item.event.arm == ""  # a column default
    assert (item.reward.seq, item.reward.quality, item.reward.latency_s,
            item.reward.output_tokens, item.reward.is_default) == (seq, 0.5, None, 12, False)


def test_a_failed_write_leaves_nothing_and_the_store_goes_on(store: Store) -> None:
    def boom(conn: object) -> None:
        raise RuntimeError("budget write failed")

    with pytest.raises(RuntimeError):
        store.add_event(event(1), also=boom)
    assert store.get_event("e1") is None  # the event went with the failed reservation
    store.add_event(event(1))
    with pytest.raises(EventConflict):
        store.add_event(event(1))
    store.add_event(event(2))  # the connection came back to the pool usable
    assert store.count_events() == {"pending": 2}
    with pytest.raises(RuntimeError):
        store.add_reward(reward(1), status="rewarded", also=boom)
    pending = store.get_event("e1")
    assert store.get_reward("e1") is None and pending is not None
    assert pending.status == "pending"


def test_a_statements_own_literals_reach_the_driver() -> None:
    """``coalesce(max(seq), 7.5)`` binds its 7.5 as a parameter the caller does not pass: the
    raw-cursor path sends the literal's value, as SQLAlchemy would (it once sent NULL)."""
    from sqlalchemy import column, func, select, table

    store = Store("sqlite://")
    rewards = table("br_rewards", column("seq"))
    statement = DriverStatement(select(func.coalesce(func.max(rewards.c.seq), 7.5)),
                                store.engine.dialect, keys=[], dumps=json_dumps)
    conn = store.engine.raw_connection()
    try:
        assert statement.execute(conn, {}) == 7.5  # no rewards yet
    finally:
        conn.close()
    with store.engine.connect() as core:  # the Core path agrees
        assert statement.execute(core, {}) == 7.5
    store.close()


# -- group commit ------------------------------------------------------------------------------
def _queued(writes: GroupCommit, n: int) -> None:
    """Wait until ``n`` writes queue behind the one under way."""
    deadline = time.monotonic() + 10
    while len(writes._queue) < n:
        assert time.monotonic() < deadline, "the writes never queued"
        time.sleep(0.001)


def _in_threads(*calls: Callable[[], object]) -> tuple[list[threading.Thread],
                                                        list[BaseException | None]]:
    errors: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            calls[i]()
        except BaseException as exc:
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    return threads, errors


def test_concurrent_writes_share_one_commit_and_a_failed_one_fails_alone(
        tmp_path: Path) -> None:
    """Writes that arrive during a commit go together into the next one; the one whose
    event id is taken gets its conflict, the others are written, and no caller returns
    before its write is readable from another connection."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    writes = store._writes
    store.add_event(event(0))
    under_way, go = threading.Event(), threading.Event()

    def hold(conn: Writer) -> None:
        under_way.set()
        assert go.wait(10)

    first, errors = _in_threads(lambda: store.add_event(event(1), also=hold))
    assert under_way.wait(10)
    before = writes.groups
    others, more = _in_threads(lambda: store.add_event(event(2)),
                               lambda: store.add_event(event(0)),  # taken
                               lambda: store.add_event(event(3)))
    _queued(writes, 3)
    go.set()
    for t in first + others:
        t.join()
    assert errors == [None]
    assert more[0] is None and more[2] is None
    assert isinstance(more[1], EventConflict)
    assert writes.groups - before == 2  # the held write's, then the three queued together
    reader = Store(store.url)  # another connection: what was acknowledged is committed
    assert reader.count_events() == {"pending": 4}
    assert {e.id for e in (reader.get_event(f"e{i}") for i in range(4)) if e} == {
        "e0", "e1", "e2", "e3"}
    reader.close()
    store.close()


def test_a_failed_group_commit_is_tried_again_write_by_write(tmp_path: Path) -> None:
    """A reward whose event does not exist, with SQLite's foreign keys deferred to the
    commit: the group's commit fails; each of its writes is tried again alone, so the one
    at fault fails and the other is written."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    writes = store._writes
    for i in range(3):
        store.add_event(event(i))
    under_way, go = threading.Event(), threading.Event()

    def hold(conn: Writer) -> None:
        under_way.set()
        assert go.wait(10)

    def orphan(conn: Writer) -> None:
        conn.execute("PRAGMA defer_foreign_keys=ON")
        conn.execute("INSERT INTO br_rewards (event_id, received_at, quality, cost_usd, reward,"
                     " is_default, held_back) VALUES ('nowhere', 0, 0, 0, 0, 0, 0)")

    first, errors = _in_threads(lambda: store.add_event(event(9), also=hold))
    assert under_way.wait(10)
    before = writes.groups
    others, more = _in_threads(
        lambda: store.add_reward(reward(1), status="rewarded"),
        lambda: store.add_event(event(3), also=orphan))
    _queued(writes, 2)
    go.set()
    for t in first + others:
        t.join()
    assert errors == [None]
    assert more[0] is None and more[1] is not None  # (the store reads its integrity error
    assert store.get_event("e3") is None            # as a conflict)
    written = store.get_reward("e1")
    assert written is not None and written.quality == 0.5
    assert store.count_events() == {"pending": 3, "rewarded": 1}
    assert writes.groups - before == 2  # the held write, then the group (tried again alone)
    with pytest.raises(RewardConflict):  # the store goes on
        store.add_reward(reward(1), status="rewarded")
    store.close()


def test_a_write_cannot_start_another_write(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def nested(conn: Writer) -> None:
        store.add_event(event(2))

    with pytest.raises(RuntimeError, match="its own commit"):
        store.add_event(event(1), also=nested)
    assert store.count_events() == {}
    store.close()


def test_postgres_groups_rewards_only(pg_url: str) -> None:
    """Decisions write one at a time on PostgreSQL (a group would take their budgets'
    advisory locks out of their order); rewards group, behind the reward lock."""
    store = Store(pg_url)
    assert not store._writes._grouped and store._reward_writes._grouped
    store.add_event(event(1))
    assert (store._writes.groups, store._writes.writes) == (1, 1)
    store.add_reward(reward(1), status="rewarded")
    assert (store._reward_writes.groups, store._reward_writes.writes) == (1, 1)
    store.close()


def _rewards_queued_behind_a_held_one(store: Store, queued: list[int]
                                      ) -> tuple[list[BaseException | None], int]:
    """Events e0-e4, e0 rewarded; a reward for e1 held in its transaction while rewards
    for ``queued`` (event numbers) queue behind it; then all finish. Returns the queued
    callers' errors and how many groups were committed meanwhile."""
    writes = store._reward_writes
    for i in range(5):
        store.add_event(event(i))
    store.add_reward(reward(0), status="rewarded")
    under_way, go = threading.Event(), threading.Event()

    def hold(conn: Writer) -> None:
        under_way.set()
        assert go.wait(10)

    first, errors = _in_threads(lambda: store.add_reward(reward(1), status="rewarded",
                                                         also=hold))
    assert under_way.wait(10)
    before = writes.groups
    others, more = _in_threads(*[
        (lambda i=i: store.add_reward(reward(i), status="rewarded")) for i in queued])
    _queued(writes, len(queued))
    go.set()
    for t in first + others:
        t.join()
    assert errors == [None]
    return more, writes.groups - before


def test_postgres_rewards_share_one_commit(pg_url: str) -> None:
    """Rewards that arrive while one is being committed go into one transaction behind the
    reward lock, with seqs in commit order, readable from another connection when their
    callers return."""
    store = Store(pg_url)
    errors, groups = _rewards_queued_behind_a_held_one(store, [2, 3])
    assert errors == [None, None]
    assert groups == 2  # the held reward's, then the two queued together
    reader = Store(store.url)
    assert reader.count_events() == {"rewarded": 4, "pending": 1}
    seqs = [r.reward.seq for r in reader.learn_log(0)]
    assert seqs == sorted(seqs) and len(seqs) == 4
    reader.close()
    store.close()


@pytest.mark.parametrize("pipeline", [True, False], ids=["pipelined", "no-pipeline"])
def test_postgres_group_with_a_duplicate_writes_the_rest(
        pipeline: bool, pg_url: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three rewards queued behind a held one, the middle one a duplicate: the group fails,
    each is tried again alone, and only the duplicate fails (quietly: the pipeline is read
    to its end before it is left, so psycopg has no second error to log). The same where
    libpq has no pipeline mode."""
    if not pipeline:
        monkeypatch.setattr(_sql, "_pipeline_supported", lambda: False)
    store = Store(pg_url)
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        errors, groups = _rewards_queued_behind_a_held_one(store, [2, 0, 3])
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], RewardConflict)
    assert groups == 2
    assert store.count_events() == {"rewarded": 4, "pending": 1}
    assert store.add_reward(reward(4), status="rewarded") > 0  # the store goes on
    store.close()


def test_postgres_writes_are_pipelined_and_an_unread_error_still_fails_the_write(
        pg_url: str) -> None:
    """On psycopg a write runs in pipeline mode: statements nobody reads go with the next
    read or the commit. One that fails unread fails the write at its commit, and nothing
    of it is written."""
    store = Store(pg_url)
    store.add_event(event(1))

    def orphan(conn: Writer) -> None:  # a reward whose event does not exist: unread
        store._mark_event.run(conn, {"event_id_": "e1", "status_": "rewarded"})
        cursor = conn.cursor()
        cursor.execute("INSERT INTO br_rewards (event_id, received_at, quality, cost_usd,"
                       " reward, is_default, held_back) VALUES ('nowhere', 0, 0, 0, 0,"
                       " false, false)")
        cursor.close()

    with pytest.raises(IntegrityError, match="foreign key"):
        _sql.write(store.engine, orphan)
    assert store.count_events() == {"pending": 1}  # the status change went with it

    if not _sql._pipeline_supported():
        pytest.skip("this libpq has no pipeline mode (the writes run as before)")

    def inserted(conn: Writer) -> object:
        assert conn.driver_connection.pgconn.pipeline_status == 1  # libpq: pipeline on
        sent = store._insert_reward.send(conn, {**_sql_values(store, reward(1))})
        store._mark_event.run(conn, {"event_id_": "e1", "status_": "rewarded"})
        return sent.result()

    seq = _sql.write(store.engine, inserted)
    assert isinstance(seq, int) and store.count_events() == {"rewarded": 1}
    store.close()


def _sql_values(store: Store, row: RewardRow) -> dict[str, object]:
    from bandit_router.core._tables import _row_values

    return _row_values(row, store._reward_columns)


def _round_trips(store: Store, call: Callable[[], object]) -> int:
    """How many times ``call`` waited for the PostgreSQL server: libpq's protocol trace of
    every connection it checked out, counted where the client's messages give way to the
    server's (the pool's own check of a connection comes before the trace and is left out)."""
    import tempfile

    import psycopg
    from sqlalchemy import event as sa_event

    flags = psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
    with tempfile.TemporaryFile("w+") as trace:

        def checkout(dbapi: Any, record: object, proxy: object) -> None:
            dbapi.pgconn.trace(trace.fileno())
            dbapi.pgconn.set_trace_flags(flags)

        def checkin(dbapi: Any, record: object) -> None:
            dbapi.pgconn.untrace()

        sa_event.listen(store.engine, "checkout", checkout)
        sa_event.listen(store.engine, "checkin", checkin)
        try:
            call()
        finally:
            sa_event.remove(store.engine, "checkout", checkout)
            sa_event.remove(store.engine, "checkin", checkin)
        trace.seek(0)
        sides = [line.split("\t", 1)[0] for line in trace.read().splitlines()]
    return sum(1 for pair in itertools.pairwise(sides) if pair == ("F", "B"))


def test_postgres_writes_and_reads_wait_for_few_round_trips(pg_url: str) -> None:
    """The round trips a hot write or read waits for on PostgreSQL (pipelined): a decision's
    event one (its BEGIN, insert and COMMIT go together), a reward two (its BEGIN, lock,
    insert and status change go with the read of its seq, its COMMIT after), a read one (in
    autocommit: no BEGIN before it, no ROLLBACK after it)."""
    if not _sql._pipeline_supported():
        pytest.skip("this libpq has no pipeline mode")
    store = Store(pg_url)
    for i in range(3):
        store.add_event(event(i))
    assert _round_trips(store, lambda: store.add_event(event(5))) == 1
    assert _round_trips(store, lambda: store.add_reward(reward(1), status="rewarded")) == 2
    assert _round_trips(store, lambda: store.get_event_and_reward("e2")) == 1
    assert _round_trips(store, lambda: store.get_observation("e2")) == 1
    assert store.count_events() == {"pending": 3, "rewarded": 1}
    store.close()


def test_postgres_an_error_answered_after_the_commit_leaves_no_autocommit(pg_url: str) -> None:
    """A statement nobody reads that fails only after the write's COMMIT is queued (a
    remote server; a duplicate key waiting on another transaction's row) fails the write
    at the pipeline's last sync: the connection goes back to the pool out of autocommit,
    so the next session is still one transaction."""

    store = Store(pg_url)
    store.add_event(event(1))

    def slow_failure(conn: Writer) -> None:
        cursor = conn.cursor()
        cursor.execute("DO $$ BEGIN PERFORM pg_sleep(0.2); RAISE unique_violation; END $$")
        cursor.close()

    with pytest.raises(IntegrityError):
        _sql.write(store.engine, slow_failure)
    with pytest.raises(RuntimeError), store.session() as s:
        assert not s.connection().connection.driver_connection.autocommit
        s.execute(text("UPDATE br_events SET status = 'half' WHERE id = 'e1'"))
        raise RuntimeError("after its first statement")
    assert store.count_events() == {"pending": 1}
    store.close()


def test_reads_return_every_row_and_leave_the_pool_usable(store: Store) -> None:
    """:func:`_sql.read` with :meth:`DriverStatement.rows`: every row, on the raw connection
    (SQLite's driver path) or through Core; a failed read raises SQLAlchemy's error and the
    next read and write go on."""
    from sqlalchemy import bindparam, select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    for i in (1, 2, 3):
        store.add_event(event(i))
    ids = DriverStatement(select(EventRow.id, EventRow.created_at)
                          .where(EventRow.created_at >= bindparam("since"))
                          .order_by(EventRow.id), store.engine.dialect, keys=[],
                          dumps=json_dumps)
    got = _sql.read(store.reads, lambda conn: ids.rows(conn, {"since": 2.0}))
    assert got == [("e2", 2.0), ("e3", 3.0)]

    def missing(conn: Writer) -> object:  # a driver error, raised as SQLAlchemy's
        if hasattr(conn, "exec_driver_sql"):
            return conn.exec_driver_sql("SELECT * FROM nothing")
        return conn.cursor().execute("SELECT * FROM nothing")

    with pytest.raises((OperationalError, ProgrammingError)):
        _sql.read(store.reads, missing)
    store.add_event(event(4))
    assert _sql.read(store.reads, lambda conn: ids.rows(conn, {"since": 3.5})) == [("e4", 4.0)]


def test_hot_reads_of_observations_and_prices(store: Store) -> None:
    """The reads a reward and a sync make on every call (``_sql.read``): an observation's
    three figures, or ``None``; the price changes after an id, in order, every column as
    written (``None`` included)."""
    from bandit_router.core._store import ObservationRow, PriceRow

    store.add_event(event(1))
    store.add_event(event(2))
    store.observe(ObservationRow(event_id="e1", observed_at=3.0, cost_usd=0.25, latency_s=None,
                                 ttft_s=0.1, output_tokens=40))
    assert store.get_observation("e1") == (0.25, None, 40)
    seen = store.get_observation("e1")
    assert seen is not None and seen.output_tokens == 40 and seen.latency_s is None
    assert store.get_observation("e2") is None
    store.add_prices([PriceRow(updated_at=float(i), provider="p", model=m,
                               input_price_per_1m=1.5 * i, output_price_per_1m=None)
                      for i, m in enumerate(("a", "b", "c"))])
    rows = store.prices()
    assert [(r.model, r.updated_at, r.input_price_per_1m, r.output_price_per_1m, r.provider)
            for r in rows] == [("a", 0.0, 0.0, None, "p"), ("b", 1.0, 1.5, None, "p"),
                               ("c", 2.0, 3.0, None, "p")]
    assert [r.model for r in store.prices(after_id=rows[1].id)] == ["c"]
    assert store.prices(after_id=rows[2].id) == []


# -- open_engine: one rule for opening the database ---------------------------------------------

def test_an_in_memory_sqlite_engine_is_one_database_for_every_thread() -> None:
    engine = _sql.open_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (7)"))
    seen: list[object] = []

    def other_thread() -> None:
        with engine.connect() as conn:
            seen.append(conn.execute(text("SELECT x FROM t")).scalar())

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen == [7]  # SQLite's default pool would give that thread an empty database
    engine.dispose()


def test_a_sqlite_file_is_opened_durable_with_the_lock_wait_given(tmp_path: Path) -> None:
    engine = _sql.open_engine(f"sqlite:///{tmp_path / 'r.db'}", timeout_s=2.5)
    with engine.connect() as conn:
        pragma = {name: conn.execute(text(f"PRAGMA {name}")).scalar()
                  for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 2500,
                      "foreign_keys": 1}
    engine.dispose()


@pytest.mark.parametrize("url", ["mysql://u@db/r", "oracle://db", "not a url", ""])
def test_only_sqlite_and_postgresql_are_opened(url: str) -> None:
    with pytest.raises(InvalidInputError, match="SQLite or PostgreSQL"):
        _sql.open_engine(url)


def test_a_postgresql_engine_checks_its_connections_and_bounds_the_connect(
        pg_url: str) -> None:
    engine = _sql.open_engine(pg_url, timeout_s=3.2)
    assert engine.pool._pre_ping  # a restarted server is reconnected to
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert conn.connection.dbapi_connection.info.get_parameters()["connect_timeout"] == "4"
    engine.dispose()

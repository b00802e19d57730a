"""Hot-path statements compiled once and run on the DBAPI cursor.

Every decision writes an event and a budget reservation, and every reward a reward row, the
event's status and the settled spend. Through SQLAlchemy Core each statement costs tens of
microseconds of Python (parameter processing, result set-up) beside SQLite's own few; these
statements are compiled once for the engine's dialect and executed on the raw cursor of the
connection SQLAlchemy holds, inside its transaction. Only SQLite and PostgreSQL (psycopg)
take this path: every other dialect keeps the Core statement (:attr:`DriverStatement.core`).

JSON columns are serialized here (by the store's serializer) and nothing else needs
processing: both drivers take ``str``, ``float``, ``int``, ``bool``, ``bytes`` and ``None``
as they are. PostgreSQL casts the JSON text (sent untyped by psycopg) to the column's type.

Every hot write is acknowledged after its own durable commit, and a commit is an fsync: one
caller after another, that bounds the writes a second (a few thousand on an SSD).
:class:`GroupCommit` lets concurrent callers share one: the writes that arrive while a
commit is under way go together into the next transaction, each in its own savepoint, so a
write that fails is undone alone and the others still commit (on SQLite: see the class).

Hot reads on SQLite run the same way, on a raw pooled connection (:func:`read`): after
another connection's commit SQLAlchemy's ``Connection`` set-up, execution context and
result cost about three times the query itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

__all__ = ["DriverStatement", "GroupCommit", "Sent", "Writer", "commit", "database_url",
           "driver_ok", "open_engine", "pipelined", "read", "write"]

#: What a hot write runs on: the raw DBAPI connection (driver path, a pool proxy) or, for
#: other dialects, a SQLAlchemy ``Connection`` in a transaction.
Writer = Any
_T = TypeVar("_T")

_DRIVERS = {("sqlite", "pysqlite"), ("postgresql", "psycopg")}
_OPEN = ("INTRANS", "INERROR")  # libpq transaction states of a transaction left open
_DRAINS = 4  # reads of a failed pipeline before leaving it (after that psycopg logs it)


def database_url(url: str) -> URL:
    """``url`` parsed, or :class:`InvalidInputError` unless it is a SQLite or PostgreSQL URL
    (the databases bandit-router runs on and is tested with).

    >>> database_url("sqlite:///router.db").get_backend_name()
    'sqlite'
    >>> database_url("mysql://db/router")
    Traceback (most recent call last):
    ...
    bandit_router.core._errors.InvalidInputError: database_url 'mysql://db/router' is not ...
    """
    from ._errors import InvalidInputError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInputError(f"database_url {url!r} is not a SQLite or PostgreSQL URL "
                                "(sqlite:///router.db, postgresql+psycopg://user@host/db)")
    return parsed


def open_engine(url: str, *, timeout_s: float = 10.0, **options: Any) -> Engine:
    """An engine for ``url`` as every part of bandit-router opens its database (the router's
    store, the service's keys and experiments, Alembic's command line): one rule for all.

    - :class:`InvalidInputError` unless ``url`` is a SQLite or PostgreSQL URL;
    - in-memory SQLite (``sqlite://``) is one connection shared by every thread (SQLite's
      default would give each thread its own empty database);
    - a SQLite file is switched to WAL, commits with ``synchronous=FULL`` (an acknowledged
      write survives a power cut), enforces foreign keys and waits up to ``timeout_s`` for
      a lock;
    - PostgreSQL connections are checked before use (a restarted server is reconnected to)
      and give up connecting after ``timeout_s``.

    ``options`` go to SQLAlchemy's ``create_engine`` (the store's JSON serializers).

    >>> engine = open_engine("sqlite://")
    >>> from sqlalchemy import text
    >>> with engine.connect() as conn:
    ...     conn.execute(text("PRAGMA foreign_keys")).scalar()
    1
    """
    parsed = database_url(url)
    kwargs: dict[str, Any] = {}
    memory = parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or "mode=memory" in url)
    if memory:
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif parsed.get_backend_name() == "postgresql":
        kwargs = {"pool_pre_ping": True,
                  "connect_args": {"connect_timeout": max(1, math.ceil(timeout_s))}}
    engine = create_engine(url, **kwargs, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(round(timeout_s * 1000)))
    return engine


def _to_wal(cur: Any, busy_ms: int) -> None:
    """Switch the file to WAL (it stays so). Connections that open a new file at once each
    hold a shared lock and want an exclusive one: SQLite answers one of them "database is
    locked" at once, without its busy handler, so the switch is tried again until the wait."""
    deadline = time.monotonic() + busy_ms / 1000
    pause = 0.001
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError; anything else is raised
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _sqlite_pragmas(busy_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")  # first: WAL's switch may wait
        _to_wal(cur, busy_ms)
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
    return on_connect


def driver_ok(dialect: Dialect) -> bool:
    """Whether ``dialect`` is one whose raw cursor :class:`DriverStatement` may use."""
    return (dialect.name, dialect.driver) in _DRIVERS


def write(engine: Engine, work: Callable[[Writer], _T]) -> _T:
    """Run ``work`` in one transaction and commit it. On SQLite and PostgreSQL ``work`` gets
    the raw DBAPI connection, without SQLAlchemy's ``Connection`` and transaction objects
    (their set-up and tear-down cost more than an in-memory insert); a connection found
    broken is invalidated, so the pool replaces it. Driver errors are raised as SQLAlchemy's
    (``IntegrityError``, ``OperationalError``, ...), as the Core path raises them."""
    if not driver_ok(engine.dialect):
        with engine.begin() as conn:
            return work(conn)
    with _raw(engine) as raw, pipelined(raw) as piped:
        result = work(raw)
        commit(raw, piped)
        return result


def read(engine: Engine, work: Callable[[Writer], _T]) -> _T:
    """Run the reads of ``work`` outside any transaction of the caller's. On SQLite ``work``
    gets a raw pooled DBAPI connection (no transaction is begun for a read; the pool's
    reset on return ends whatever the driver began); elsewhere a SQLAlchemy ``Connection``
    (on PostgreSQL from an ``AUTOCOMMIT`` engine, as the store's reads are). Driver errors
    are raised as SQLAlchemy's; a connection found broken is invalidated."""
    if engine.dialect.name != "sqlite" or not driver_ok(engine.dialect):
        with engine.connect() as conn:
            return work(conn)
    with _raw(engine) as raw:
        return work(raw)


@contextmanager
def _raw(engine: Engine) -> Iterator[Any]:
    """A raw pooled DBAPI connection for the block, back to the pool after it; on an error
    rolled back (or invalidated, when broken) and the error raised as SQLAlchemy's."""
    raw = engine.raw_connection()
    try:
        yield raw
    except BaseException as exc:
        error = _abandoned(engine, raw, exc)
        if error is exc:
            raise
        raise error from exc
    finally:
        raw.close()


@contextmanager
def pipelined(raw: Any) -> Iterator[bool]:
    """psycopg's pipeline mode on ``raw`` (a pooled DBAPI connection) for the block, and
    whether it is on (elsewhere the block runs as it is).

    In pipeline mode a statement whose result nobody reads (:meth:`DriverStatement.run`, an
    ``executemany``) is sent without waiting for the server; the next read, or the end of
    the block, waits for all of them at once. A write's statements that read nothing cost no
    round trip of their own; an error surfaces at the next read or at the end of the block,
    inside the same transaction (which is then rolled back). End a write with
    :func:`commit`: in pipeline mode its ``COMMIT`` is the last statement the block's end
    waits for, so no exchange follows the commit's answer."""
    conn: Any = getattr(raw, "driver_connection", None)
    if getattr(conn, "pipeline", None) is None or not _pipeline_supported():
        yield False
        return
    # the transaction is begun by a statement in the pipeline, not by psycopg (which would
    # wait for its BEGIN's answer alone), so the connection is in autocommit meanwhile
    conn.autocommit = True
    try:
        with conn.pipeline() as pipeline:
            conn.execute("BEGIN")
            try:
                yield True
            except BaseException:
                # read what the server said to every statement sent so far (each read
                # stops at the first error it meets), so that leaving the pipeline has
                # nothing left to wait for (psycopg would log a second error there); the
                # block's own error is the one raised
                for _ in range(_DRAINS):
                    try:
                        pipeline.sync()
                        break
                    except conn.Error:  # (an aborted statement's: the first is known)
                        continue
                raise
    finally:
        with suppress(conn.Error):  # (a broken connection: the caller invalidates it)
            # a transaction left open (the block raised, or a statement nobody read failed
            # after the COMMIT was sent, answered at the pipeline's last sync) is ended
            # here, or autocommit could not be turned off and the pool would lend the
            # connection in autocommit
            if conn.info.transaction_status.name in _OPEN:
                conn.execute("ROLLBACK")
            conn.autocommit = False  # as the pool lends it


def commit(raw: Any, piped: bool) -> None:
    """Commit ``raw``'s transaction: inside :func:`pipelined`, as one more pipelined
    statement (its answer comes with the block's end, the write's last exchange with the
    server); otherwise by the driver."""
    if not piped:
        raw.commit()
        return
    cursor = raw.cursor()
    try:
        cursor.execute("COMMIT")
    finally:
        cursor.close()


@cache
def _pipeline_supported() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _abandoned(engine: Engine, raw: Any, exc: BaseException) -> BaseException:
    """Roll back ``raw``'s transaction after ``exc`` (or invalidate ``raw``, when the
    connection is lost or the rollback fails: the pool replaces it) and return the error
    to raise: a driver error as SQLAlchemy would raise it (e.g. ``OperationalError``)."""
    dbapi = engine.dialect.loaded_dbapi
    lost = isinstance(exc, dbapi.Error) and engine.dialect.is_disconnect(exc, raw, None)
    if lost:
        raw.invalidate(exc)
    else:
        try:
            raw.rollback()
        except dbapi.Error:  # broke meanwhile: the first error is the one reported
            raw.invalidate()
    return _as_sqlalchemy(engine, exc, lost=lost)


def _as_sqlalchemy(engine: Engine, exc: BaseException, *, lost: bool = False) -> BaseException:
    dbapi = engine.dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        return exc
    error = DBAPIError.instance(None, None, exc, dbapi.Error,  # type: ignore[arg-type]
                                connection_invalidated=lost, dialect=engine.dialect)
    error.__cause__ = exc
    return error


class _Job(Generic[_T]):
    """One caller's write in a :class:`GroupCommit`: its work, then its outcome."""

    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Writer], _T]) -> None:
        self.work = work
        self.done = False
        self.result: _T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Runs writes as :func:`write` does, sharing commits between concurrent callers.

    A caller that finds no commit under way writes alone, exactly as :func:`write`. Callers
    that arrive meanwhile queue; when the commit ends, one of them (the leader) runs every
    queued write in one transaction, each in a savepoint (a write that raises is rolled back
    to it, and its caller alone gets the error), commits once, and wakes the others. No
    caller returns before the commit that holds its write: what a caller was told is
    written is durable. When the group's commit fails (a deferred constraint, a lost
    connection), nothing in it was written, and each write that had not failed is tried
    again alone, so only the one at fault fails.

    SQLite groups every write: it has one writer at a time anyway, and its commit (an fsync)
    is most of a write. PostgreSQL groups only the writes of a writer made with ``first``, a
    statement every transaction of it runs before anything else (the store's rewards: their
    advisory lock, which makes commit order ``seq`` order). That lock serialises the groups
    of every replica, and the rewards' other writes take no advisory lock, so a group cannot
    deadlock with a decision's transaction (decisions take their budgets' locks, then the
    spend rows, one hour's rows in one order). Decisions write one at a time: a group would
    take their budgets' advisory locks in its writes' order, not each transaction's. On
    PostgreSQL a write is bound by round trips to the server, so a group runs without
    savepoints (two round trips each): a write that raises rolls the whole group back, and
    each of its writes is tried again alone, as after a failed commit.

    >>> from sqlalchemy import create_engine
    >>> engine = create_engine("sqlite://")
    >>> writes = GroupCommit(engine)
    >>> writes.run(lambda conn: conn.execute("CREATE TABLE t (x)").rowcount)
    -1
    >>> writes.run(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount)
    1
    >>> writes.groups, writes.writes
    (2, 2)
    """

    def __init__(self, engine: Engine, *, first: Callable[[Writer], object] | None = None
                 ) -> None:
        self.engine = engine
        self._first = first
        name = engine.dialect.name
        self._grouped = driver_ok(engine.dialect) and (
            name == "sqlite" or (name == "postgresql" and first is not None))
        self._savepoints = name == "sqlite"
        self._changed = threading.Condition()
        self._queue: list[_Job[Any]] = []
        self._leader: int | None = None  # the thread whose transaction is under way
        #: groups committed (a write alone is a group of one) and the writes they held
        self.groups = 0
        self.writes = 0

    def run(self, work: Callable[[Writer], _T]) -> _T:
        """Run ``work`` in a transaction and commit it (perhaps with other callers' writes);
        its result, or the error it (or the commit) raised."""
        if not self._grouped:
            try:
                return write(self.engine, self._alone(work))
            finally:
                with self._changed:
                    self.groups += 1
                    self.writes += 1
        me = threading.get_ident()
        job: _Job[_T] = _Job(work)
        with self._changed:
            if self._leader == me:
                raise RuntimeError("a write cannot start another write: it would wait for "
                                   "its own commit")
            self._queue.append(job)
            while self._leader is not None and not job.done:
                self._changed.wait()
            if job.done:  # another caller's commit held it
                return job.outcome()
            self._leader = me
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            with self._changed:
                self._leader = None
                self.groups += 1
                self.writes += len(batch)
                for queued in batch:
                    queued.done = True
                self._changed.notify_all()
        return job.outcome()

    def _alone(self, work: Callable[[Writer], _T]) -> Callable[[Writer], _T]:
        first = self._first
        if first is None:
            return work

        def after_first(conn: Writer) -> _T:
            first(conn)
            return work(conn)
        return after_first

    def _commit(self, batch: list[_Job[Any]]) -> None:
        if len(batch) == 1:
            job = batch[0]
            try:
                job.result = write(self.engine, self._alone(job.work))
            except BaseException as exc:
                job.error = exc
            return
        raw = self.engine.raw_connection()
        try:
            if self._savepoints:
                self._run_in_savepoints(raw, batch)
                raw.commit()
            else:  # the first write that raises abandons the group (below)
                with pipelined(raw) as piped:
                    if self._first is not None:
                        self._first(raw)
                    for job in batch:
                        job.result = job.work(raw)
                    commit(raw, piped)
        except BaseException as exc:  # the transaction is lost: nothing in it was written
            _abandoned(self.engine, raw, exc)
            for job in batch:  # so each write that had not failed is tried again alone
                if job.error is None:
                    try:
                        job.result = write(self.engine, self._alone(job.work))
                    except BaseException as alone:
                        job.result, job.error = None, alone
        finally:
            raw.close()

    def _run_in_savepoints(self, raw: Any, batch: list[_Job[Any]]) -> None:
        cursor = raw.cursor()
        try:
            # pysqlite would begin only before DML, not before a savepoint
            cursor.execute("BEGIN IMMEDIATE")
            if self._first is not None:
                self._first(raw)
            for job in batch:
                cursor.execute("SAVEPOINT br_write")
                try:
                    job.result = job.work(raw)
                except BaseException as exc:
                    cursor.execute("ROLLBACK TO SAVEPOINT br_write")
                    job.error = _as_sqlalchemy(self.engine, exc)
                cursor.execute("RELEASE SAVEPOINT br_write")
        finally:
            cursor.close()


class DriverStatement:
    """``stmt`` compiled for ``dialect`` with parameters ``keys``; executed on the DBAPI
    cursor (with ``returning``: the first column of the first row comes back).

    ``json`` names the parameters written to JSON columns; ``dumps`` serializes them.
    """

    def __init__(self, stmt: ClauseElement, dialect: Dialect, *, keys: Sequence[str],
                 dumps: Callable[[Any], str], json: Iterable[str] = ()) -> None:
        assert isinstance(stmt, Executable)
        self.core: Executable = stmt
        self.enabled = driver_ok(dialect)
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        #: whether the statement returns rows (a select, an insert's ``RETURNING``)
        self.returns_rows = (bool(compiled.effective_returning)
                             or bool(getattr(stmt, "is_select", False)))
        positions = compiled.positiontup
        self._positional = list(positions) if positions is not None else None
        names = self._positional or list(compiled.binds)
        self._names = names
        #: the values of the statement's own literals (``coalesce(x, 0.0)``'s 0.0), which a
        #: caller does not pass
        self._defaults = {name: bind.value for name, bind in compiled.binds.items()
                          if bind.value is not None and name in names}
        self._json = [name for name in set(json) if name in names]
        self._dumps = dumps

    @classmethod
    def json_columns(cls, table: Any) -> list[str]:
        """The keys of ``table``'s JSON columns."""
        return [c.key for c in table.columns if isinstance(c.type, JSON)]

    def _params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self._defaults:
            values = {**self._defaults, **values}
        if self._json:
            values = dict(values)
            for name in self._json:
                if values.get(name) is not None:
                    values[name] = self._dumps(values[name])
        if self._positional is not None:
            return tuple(map(values.get, self._positional))
        return {name: values.get(name) for name in self._names}

    def execute(self, conn: Writer, values: Mapping[str, Any]) -> Any:
        """Run once (``conn`` from :func:`write`). Returns the first column of the first row
        the statement returns, else the id of the row an insert made (where the driver
        tells it), else ``None``."""
        return self.send(conn, values).result()

    def run(self, conn: Writer, values: Mapping[str, Any]) -> None:
        """Run once, reading nothing back: in psycopg's pipeline mode (:func:`pipelined`) the
        statement goes to the server with the next read or the commit."""
        self.send(conn, values).close()

    def send(self, conn: Writer, values: Mapping[str, Any]) -> Sent:
        """Run once; :meth:`Sent.result` reads what :meth:`execute` returns. In pipeline mode
        the read waits for the server, so a write reads last what it needs last, and one
        round trip brings the results of every statement sent before."""
        if isinstance(conn, Connection):
            result = conn.execute(self.core, dict(values))
            if result.returns_rows:
                return Sent(None, value=result.scalar())
            key = result.inserted_primary_key if result.context.isinsert else None
            return Sent(None, value=key[0] if key else None)
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self._params(values))
        except BaseException:
            cursor.close()
            raise
        return Sent(cursor, returns_rows=self.returns_rows)

    def rows(self, conn: Writer, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run once and return every row (``conn`` from :func:`read` or :func:`write`)."""
        if isinstance(conn, Connection):
            return [tuple(row) for row in conn.execute(self.core, dict(values))]
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self._params(values))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def executemany(self, conn: Writer, rows: Sequence[Mapping[str, Any]]) -> None:
        if isinstance(conn, Connection):
            conn.execute(self.core, [dict(r) for r in rows])
            return
        cursor = conn.cursor()
        try:
            params: Any = [self._params(r) for r in rows]  # all tuples, or all mappings
            cursor.executemany(self.sql, params)
        finally:
            cursor.close()


class Sent:
    """A statement run by :meth:`DriverStatement.send`, its result not read yet."""

    __slots__ = ("_cursor", "_returns_rows", "_value")

    def __init__(self, cursor: Any, *, value: Any = None, returns_rows: bool = False) -> None:
        self._cursor = cursor
        self._value = value
        self._returns_rows = returns_rows

    def result(self) -> Any:
        """The first column of the first row returned, else the id of the row an insert made
        (where the driver tells it), else ``None``."""
        cursor = self._cursor
        if cursor is None:
            return self._value
        try:
            if self._returns_rows:
                row = cursor.fetchone()
                self._value = row[0] if row is not None else None
            else:
                self._value = getattr(cursor, "lastrowid", None)
        finally:
            self.close()
        return self._value

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import JSON
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

__all__ = ["DriverStatement", "Writer", "driver_ok", "write"]

#: What a hot write runs on: the raw DBAPI connection (driver path, a pool proxy) or, for
#: other dialects, a SQLAlchemy ``Connection`` in a transaction.
Writer = Any
_T = TypeVar("_T")

_DRIVERS = {("sqlite", "pysqlite"), ("postgresql", "psycopg")}


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
    raw = engine.raw_connection()
    try:
        result = work(raw)
        raw.commit()
        return result
    except BaseException as exc:
        dbapi = engine.dialect.loaded_dbapi
        lost = isinstance(exc, dbapi.Error) and engine.dialect.is_disconnect(exc, raw, None)
        if lost:
            raw.invalidate(exc)
        else:
            try:
                raw.rollback()
            except dbapi.Error:  # broke meanwhile: the pool replaces it, and the first
                raw.invalidate()  # error is the one reported
        if isinstance(exc, dbapi.Error):  # as SQLAlchemy would raise it (e.g. OperationalError)
            raise DBAPIError.instance(None, None, exc, dbapi.Error,
                                      connection_invalidated=lost,
                                      dialect=engine.dialect) from exc
        raise
    finally:
        raw.close()


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
        if isinstance(conn, Connection):
            result = conn.execute(self.core, dict(values))
            if result.returns_rows:
                return result.scalar()
            key = result.inserted_primary_key if result.context.isinsert else None
            return key[0] if key else None
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self._params(values))
            if cursor.description is not None:
                row = cursor.fetchone()
                return row[0] if row is not None else None
            return getattr(cursor, "lastrowid", None)
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

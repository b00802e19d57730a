"""Schema migrations, by Alembic: the library's tables (``bandit_router/core/migrations``) and,
with the same machinery, the service's (``feedback_api/migrations``).

Every :class:`~bandit_router.core._store.Store` brings its database to the newest schema when it
opens it. A database already there is only read (no lock, no write: a read-only copy opens);
otherwise the migration runs under a lock, so that several processes starting at once on one
database (replicas on PostgreSQL, workers on one SQLite file) migrate it once:

- a new database gets every table from the migrations;
- a database made before migrations existed (bandit-router 0.1.0 and earlier: tables, no
  version table) is brought to the baseline revision (the columns schema 2 added, if it lacks
  them) and stamped there, then upgraded like any other;
- a database at an older revision is upgraded; one at a revision this release does not know
  (written by a newer release) is refused rather than guessed at.

The command line works too, for whoever migrates ahead of a deployment:
``alembic -c <bandit_router/core/migrations/alembic.ini> -x url=<SQLAlchemy URL> upgrade head``
(or :func:`migrate` from Python).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine

from ._errors import BanditRouterError
from ._sql import open_engine

__all__ = ["BASELINE", "LIBRARY", "VERSION_TABLE", "Migrations", "SchemaError", "head",
           "library_metadata", "migrate", "revision", "run_env"]

#: Alembic's version table for the library's tables (the service keeps its own)
VERSION_TABLE = "br_alembic_version"
#: the revision of bandit-router 0.1.0's schema
BASELINE = "0001"
#: columns added to 0.1.0's first schema in place, before migrations existed
_LEGACY_COLUMNS = {"br_events": ("tenant", "reserved_usd", "deployment")}
_LEGACY_INDEXES = {"br_events": {"ix_br_events_tenant": "tenant"}}
#: pg_advisory_xact_lock key serialising migrations ("br-schem")
_MIGRATION_LOCK = 0x62722D736368656D


class SchemaError(BanditRouterError):
    """The database's schema is one this release cannot use (written by a newer release)."""


def library_metadata() -> MetaData:
    """The MetaData of every library table."""
    from ._tables import _Base

    return _Base.metadata


@dataclass(frozen=True, slots=True, kw_only=True)
class Migrations:
    """One set of tables under migrations: where its scripts are, its version table, its
    baseline revision (whose module defines ``baseline_metadata()``, the tables as they were
    then), its MetaData, and what brings a database made before migrations (some of the
    tables, no version table) to the baseline, beyond creating the baseline tables it lacks."""

    location: Path
    version_table: str
    baseline: str
    metadata: Callable[[], MetaData]
    legacy: Callable[[Connection], None] | None = None

    def config(self, connection: Connection | None = None) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(self.location))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg


def _legacy_columns(conn: Connection) -> None:
    """The columns and index schema 2 added to 0.1.0's first schema, where missing."""
    inspector = inspect(conn)
    tables = library_metadata().tables
    for table, columns in _LEGACY_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for name in columns:
            if name not in have:  # nullable, as the models declare them
                sql_type = tables[table].c[name].type.compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
    for table, indexes in _LEGACY_INDEXES.items():
        named = {i["name"] for i in inspector.get_indexes(table)}
        for name, column in indexes.items():
            if name not in named:
                conn.execute(text(f"CREATE INDEX {name} ON {table} ({column})"))


#: the library's tables
LIBRARY = Migrations(location=Path(__file__).parent / "migrations",
                     version_table=VERSION_TABLE, baseline=BASELINE,
                     metadata=library_metadata, legacy=_legacy_columns)


def _ours(obj: object, name: str | None, type_: str, reflected: bool,
          compare_to: object | None) -> bool:
    """Autogenerate compares one set's tables only: the other set's share the database but
    are not this one's to drop."""
    return not (type_ == "table" and reflected and compare_to is None)


def run_env(migrations: Migrations) -> None:
    """The body of a set's Alembic ``env.py``: on the connection :func:`migrate` hands over,
    or, from the ``alembic`` command line, on ``-x url=<SQLAlchemy URL>``."""
    from alembic import context

    def run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=migrations.metadata(),
                          version_table=migrations.version_table, render_as_batch=True,
                          compare_type=True, include_object=_ours)
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = (context.get_x_argument(as_dictionary=True).get("url")
           or context.config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("give the database: alembic -x url=<SQLAlchemy URL> ...")
    engine = open_engine(url)  # as the router opens it (WAL, the lock wait)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


@cache
def _scripts(migrations: Migrations) -> ScriptDirectory:
    """A set's migration scripts, read once per process (they do not change while it runs;
    reading them costs milliseconds, and every store opened would pay it)."""
    return ScriptDirectory.from_config(migrations.config())


def head(migrations: Migrations = LIBRARY) -> str:
    """The newest revision this release knows."""
    found = _scripts(migrations).get_current_head()
    assert found is not None
    return found


def revision(engine: Engine, migrations: Migrations = LIBRARY) -> str | None:
    """The database's revision (``None``: not under migrations yet, or empty)."""
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": migrations.version_table}).get_current_revision()


#: How long a process waits on SQLite for another's migration: every process started at once
#: on a new database queues here, once, whatever the store's own (short) lock timeout.
_MIGRATION_WAIT_MS = 300_000


def _lock(conn: Connection) -> None:
    """Serialise migrations across processes, until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout={_MIGRATION_WAIT_MS}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, taken now, not at the DDL


def migrate(engine: Engine, migrations: Migrations = LIBRARY) -> str:
    """Bring the database to the newest schema of ``migrations`` (see the module's notes);
    returns the revision it is at. :class:`SchemaError` when a newer release wrote it."""
    script = _scripts(migrations)
    newest = script.get_current_head()
    assert newest is not None
    if revision(engine, migrations) == newest:  # the usual case: no lock, no write
        return newest
    with engine.connect() as conn:
        busy = (conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                if conn.dialect.name == "sqlite" else None)
        conn.commit()
        try:
            return _migrate_locked(conn, migrations, script, newest)
        finally:
            if busy is not None:  # the pooled connection goes back with the store's timeout
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy)}")


def _migrate_locked(conn: Connection, migrations: Migrations, script: ScriptDirectory,
                    newest: str) -> str:
    """:func:`migrate`'s work under the migration lock, on ``conn``."""
    _lock(conn)  # then look again: another process may have migrated meanwhile
    current = MigrationContext.configure(
        conn, opts={"version_table": migrations.version_table}).get_current_revision()
    known = {str(s.revision) for s in script.walk_revisions()}
    if current is not None and current not in known:
        conn.rollback()
        raise SchemaError(f"the database is at schema revision {current!r} of "
                          f"{migrations.version_table}, which this release does not know "
                          f"(it knows up to {head(migrations)!r}): it was written by a "
                          "newer bandit-router; upgrade this one")
    ours = set(migrations.metadata().tables)
    if current is None and ours & set(inspect(conn).get_table_names()):
        # made before migrations: to the baseline (the tables it lacks, then the rest)
        if migrations.legacy is not None:
            migrations.legacy(conn)
        baseline = script.get_revision(migrations.baseline)
        assert baseline is not None and baseline.module is not None
        baseline.module.baseline_metadata().create_all(conn, checkfirst=True)
        command.stamp(migrations.config(conn), migrations.baseline)
    command.upgrade(migrations.config(conn), "head")
    conn.commit()
    return newest

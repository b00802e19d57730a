"""Schema migrations (Alembic): a new database, a database made before migrations existed
(with data in it), a newer release's database, the migrations against the models, and many
processes opening one new database at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from bandit_router import Router
from bandit_router.core._schema import (
    BASELINE,
    VERSION_TABLE,
    SchemaError,
    head,
    library_metadata,
    migrate,
    revision,
)
from bandit_router.core._store import Store
from bandit_router.eval.simulation import HashEmbedder, demo_catalog


@pytest.fixture
def url(db_url: str) -> str:
    return db_url


def _router(url: str) -> Router:
    return Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder())


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "version_table": VERSION_TABLE})
            return list(compare_metadata(ctx, library_metadata()))
    finally:
        engine.dispose()


def test_a_new_database_gets_the_newest_schema_and_it_matches_the_models(url: str) -> None:
    store = Store(url)
    try:
        assert revision(store.engine) == head()
        tables = set(inspect(store.engine).get_table_names())
        assert set(library_metadata().tables) | {VERSION_TABLE} == tables
    finally:
        store.close()
    assert _diff(url) == []  # what the migrations built is what the models declare


def _as_before_migrations(url: str) -> None:
    """Turn a database into one that bandit-router 0.1.0's first schema made: no version
    table, no budget tables, no schema-2 columns, no checkpoint manifests (revision 0002), no
    observations (0003), no held-back flag on rewards (0004), no shared cooldowns (0005), no
    index on when rewards were received (0006), no memory pages (0007)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        for table in ("br_budget_alerts", "br_spend", "br_budgets", "br_observations",
                      "br_cooldowns", "br_memory_pages"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DROP INDEX IF EXISTS ix_br_events_tenant"))
        conn.execute(text("DROP INDEX IF EXISTS ix_br_rewards_received_at"))
        for column in ("tenant", "reserved_usd", "deployment"):
            conn.execute(text(f"ALTER TABLE br_events DROP COLUMN {column}"))
        conn.execute(text("ALTER TABLE br_checkpoints DROP COLUMN manifest"))
        conn.execute(text("ALTER TABLE br_rewards DROP COLUMN held_back"))
    engine.dispose()


def test_a_database_from_before_migrations_keeps_its_data(url: str) -> None:
    router = _router(url)
    events = []
    for i in range(5):
        d = router.select(f"translate sentence {i} to French")
        router.reward(d.event_id, quality=0.5 + 0.1 * i, cost_usd=0.001)
        events.append(d.event_id)
    pending = router.select("one without a reward yet").event_id
    router.close()
    _as_before_migrations(url)

    router = _router(url)  # opening it migrates it
    try:
        assert revision(router.store.engine) == head()
        assert [router.get_event(e).reward["quality"] for e in events] == pytest.approx(
            [0.5, 0.6, 0.7, 0.8, 0.9])
        assert router.get_event(pending).status == "pending"
        assert router.get_routing_stats()["rewarded"] == 5
        router.reward(pending, quality=1.0, cost_usd=0.0)  # and it goes on working
        router.set_budget(daily_limit=1.0)  # with the tables added since
        d = router.select("a tenant's request", tenant="team-a")
        router.reward(d.event_id, quality=1.0, cost_usd=0.002)
    finally:
        router.close()
    assert _diff(url) == []


def test_a_newer_releases_database_is_refused(url: str) -> None:
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaError, match="9999"):
        Store(url)


def test_migrating_twice_changes_nothing(url: str) -> None:
    engine = create_engine(url)
    try:
        assert migrate(engine) == head()
        assert migrate(engine) == head()
        assert revision(engine) == head()
    finally:
        engine.dispose()
    assert head() >= BASELINE


def _open_at_once(url: str, n: int = 4) -> tuple[list[BaseException], list[Store]]:
    """``n`` threads open a Store on ``url`` at the same moment: what they raised, and the
    stores opened."""
    errors: list[BaseException] = []
    stores: list[Store] = []
    start = threading.Barrier(n)

    def open_store() -> None:
        try:
            start.wait()
            stores.append(Store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors, stores


def test_many_processes_open_one_new_database_at_once(url: str) -> None:
    errors, stores = _open_at_once(url)
    for store in stores:
        store.close()
    assert errors == [] and len(stores) == 4
    assert _diff(url) == []


def test_threads_opening_a_new_sqlite_file_at_once_all_switch_it_to_wal(tmp_path: Path) -> None:
    # the switch to WAL raced: one of the openers got "database is locked" at once, about one
    # new file in four here; thirty files make a regression all but certain to show
    for n in range(30):
        errors, stores = _open_at_once(f"sqlite:///{tmp_path / f'new{n}.db'}")
        modes = []
        for store in stores:
            with store.engine.connect() as conn:
                modes.append(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
            store.close()
        assert errors == [] and modes == ["wal"] * 4


def test_the_services_tables_are_migrated_too(url: str) -> None:
    from feedback_api import KeyStore
    from feedback_api.tables import SERVICE, migrate_service, service_metadata

    keys = KeyStore(url)
    key, secret = keys.create(name="ops", scope="admin")
    keys.close()
    engine = create_engine(url)
    try:
        assert revision(engine, SERVICE) == head(SERVICE)
        with engine.begin() as conn:  # as 0.1.0 made them: the tables, no version table
            conn.execute(text(f"DROP TABLE {SERVICE.version_table}"))
            for column in ("expires_at", "tenant"):  # (added by 0002)
                conn.execute(text(f"ALTER TABLE br_api_keys DROP COLUMN {column}"))
        assert migrate_service(engine) == head(SERVICE)  # stamped, upgraded, its keys kept
        assert migrate(engine) == head()  # and the library's beside them, each on its own
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": SERVICE.version_table,
                            "include_object": lambda o, n, t, r, c: not (
                                t == "table" and r and c is None)})
            assert list(compare_metadata(ctx, service_metadata())) == []
    finally:
        engine.dispose()
    keys = KeyStore(url)
    try:
        assert keys.verify(secret) is not None
        assert [k.id for k in keys.list()] == [key.id]
    finally:
        keys.close()


def test_a_database_at_the_newest_schema_opens_read_only(tmp_path: Path) -> None:
    """No lock and no write when there is nothing to migrate: a read-only connection (a
    report on a replica's copy, say) opens it; before migrations existed it did too."""
    path = tmp_path / "ro.db"
    Store(f"sqlite:///{path}").close()
    store = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        assert revision(store.engine) == head() and store.count_events() == {}
    finally:
        store.close()


def test_opening_a_migrated_database_does_not_wait_for_its_writers(tmp_path: Path) -> None:
    """A writer holding SQLite's write lock (a long reward batch, another process's
    migration) does not hold up a process that only opens the database: nothing to migrate,
    no lock taken."""
    import sqlite3

    path = tmp_path / "busy.db"
    Store(f"sqlite:///{path}").close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock, held
    opened: list[Store] = []
    thread = threading.Thread(target=lambda: opened.append(Store(f"sqlite:///{path}")))
    thread.start()
    thread.join(timeout=10)  # a liveness check: the lock would hold it for the 30 s timeout
    blocked = thread.is_alive()
    writer.execute("ROLLBACK")
    writer.close()
    thread.join()
    for store in opened:
        store.close()
    assert not blocked and len(opened) == 1

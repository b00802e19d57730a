"""The store on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from bandit_router.core._store import CheckpointRow, EventRow, RewardConflict, RewardRow, Store


def event(i: int, created_at: float = 0.0) -> EventRow:
    return EventRow(id=f"e{i}", created_at=created_at, status="pending", task_hash="0" * 64,
                    task_text=None, embedder="x", embedding=b"\x00" * 8, context={"T": {}},
                    actions=[{"key": "p/m"}], chosen=0, model_key="p/m", probability=1.0,
                    pmf=[1.0], cost_weight=1.0, latency_weight=0.0, input_tokens=3,
                    reference_key="p/m", reference_cost_usd=0.01, constraints={},
                    policy_version=0, meta={})


def reward(i: int, quality: float = 1.0) -> RewardRow:
    return RewardRow(event_id=f"e{i}", received_at=1.0, quality=quality, cost_usd=0.001,
                     latency_s=None, output_tokens=None, error=None, reward=quality,
                     is_default=False)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Store:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(url)
    yield s
    s.close()


@pytest.mark.parametrize("url", ["mysql://db/router", "nope://x", "not a url", ""])
def test_a_store_opens_sqlite_or_postgresql_only(url: str, tmp_path) -> None:
    from bandit_router import InvalidInputError

    with pytest.raises(InvalidInputError, match="is not a SQLite or PostgreSQL URL"):
        Store(url)
    Store(f"sqlite:///{tmp_path / 'ok.db'}").close()  # (postgresql: every pg_url test)


def test_events_rewards_and_the_learning_log(store: Store) -> None:
    for i in range(3):
        store.add_event(event(i, created_at=float(i)))
    seqs = [store.add_reward(reward(i), status="rewarded") for i in (2, 0)]
    assert seqs == sorted(seqs)
    log = store.learn_log(0)
    assert [item.event.id for item in log] == ["e2", "e0"]
    assert [item.event.id for item in store.learn_log(seqs[0])] == ["e0"]
    assert store.get_event("e1").status == "pending"  # type: ignore[union-attr]
    assert store.get_event("e2").status == "rewarded"  # type: ignore[union-attr]
    assert store.count_events() == {"pending": 1, "rewarded": 2}
    assert store.add_default_rewards(before=10.0, now=11.0, reward=-0.5) == 1
    assert store.add_default_rewards(before=10.0, now=12.0, reward=-0.5) == 0
    default = store.get_reward("e1")
    assert default is not None and default.is_default and default.reward == -0.5
    assert default.seq > seqs[-1]
    assert store.count_events() == {"defaulted": 1, "rewarded": 2}


def test_one_reward_per_event(store: Store) -> None:
    store.add_event(event(0))
    store.add_reward(reward(0, 0.9), status="rewarded")
    with pytest.raises(RewardConflict):
        store.add_reward(reward(0, 0.1), status="rewarded")
    assert store.get_reward("e0").quality == 0.9  # type: ignore[union-attr]


def test_an_event_and_its_reward_read_in_one_query_are_the_rows_written(store: Store) -> None:
    def columns(row: object) -> dict[str, object]:
        return {a.key: getattr(row, a.key) for a in type(row).__mapper__.column_attrs}  # type: ignore[attr-defined]

    store.add_event(event(0))
    assert store.get_event_and_reward("missing") == (None, None)
    found, none = store.get_event_and_reward("e0")
    assert none is None and found is not None
    assert columns(found) == columns(store.get_event("e0"))  # JSON, bytes and all
    store.add_reward(reward(0, 0.25), status="rewarded")
    found, got = store.get_event_and_reward("e0")
    assert found is not None and found.status == "rewarded" and found.context == {"T": {}}
    assert got is not None and columns(got) == columns(store.get_reward("e0"))
    assert got.quality == 0.25 and got.held_back is False


def test_only_the_newest_checkpoints_are_kept(store: Store) -> None:
    for i in range(4):
        store.add_checkpoint(CheckpointRow(created_at=float(i), reward_seq=i, learned=i,
                                           config_hash="h", sha256="s", policy=b"p" * i,
                                           memory=b"m"), keep=2)
    assert [c.reward_seq for c in store.checkpoints()] == [3, 2]


def checkpoint(i: int) -> CheckpointRow:
    return CheckpointRow(created_at=float(i), reward_seq=i, learned=i, config_hash="h",
                         sha256="s", policy=b"p", memory=b"m")


def test_a_checkpoint_another_replica_pruned_first_is_no_error(pg_url: str) -> None:
    """Two replicas checkpoint at once: the other prunes the old rows between this one's
    query for them and its delete (issue #19 saw ``UnmappedInstanceError`` here)."""
    from sqlalchemy import event as sa_event

    mine, other = Store(pg_url), Store(pg_url)
    try:
        for i in range(3):
            other.add_checkpoint(checkpoint(i), keep=3)
        raced = []

        def prune_meanwhile(*args: object) -> None:
            statement = str(args[2])
            if not raced and statement.lstrip().upper().startswith("SELECT") \
                    and "OFFSET" in statement.upper():
                raced.append(True)
                other.add_checkpoint(checkpoint(3), keep=1)  # deletes 0, 1 and 2

        sa_event.listen(mine.engine, "after_cursor_execute", prune_meanwhile)
        mine.add_checkpoint(checkpoint(4), keep=2)
        assert raced
        assert sorted(c.reward_seq for c in mine.checkpoints()) == [3, 4]
    finally:
        mine.close()
        other.close()


def test_default_rewards_leave_rewarded_and_recent_events_alone(store: Store) -> None:
    for i in range(4):
        store.add_event(event(i, created_at=float(i)))
    store.add_reward(reward(1), status="rewarded")
    assert store.add_default_rewards(before=2.5, now=5.0, reward=0.0) == 2  # e0, e2
    assert store.get_reward("e1").is_default is False  # type: ignore[union-attr]
    assert store.get_event("e3").status == "pending"  # type: ignore[union-attr]
    assert [i.event.id for i in store.learn_log(0)] == ["e1", "e0", "e2"]


def test_prices_are_written_together_and_read_after_an_id(store: Store) -> None:
    from bandit_router.core._store import PriceRow

    store.add_prices([PriceRow(updated_at=1.0, provider="p", model=m, input_price_per_1m=1.0,
                               output_price_per_1m=None) for m in ("a", "b")])
    rows = store.prices()
    assert [r.model for r in rows] == ["a", "b"]
    assert [r.model for r in store.prices(after_id=rows[0].id)] == ["b"]


def test_a_locked_database_fails_within_the_timeout_as_sqlalchemy_error(tmp_path) -> None:
    """Driver errors on the hot path come out as SQLAlchemy's, after ``timeout_s``."""
    import sqlite3
    import time

    from sqlalchemy.exc import OperationalError

    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}", timeout_s=0.3)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            store.add_event(event(0))
        assert time.monotonic() - start < 3.0
        locker.execute("ROLLBACK")
        store.add_event(event(0))  # nothing of the failed write was kept
        assert store.get_event("e0") is not None
    finally:
        locker.close()
        store.close()


def test_the_learners_log_tail_is_read_by_seq_not_by_arm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The learner reads the rewards after its last seq on every pass; filtered by arm, the
    query must still walk the rewards' primary key from that seq, not every event of the arm
    (which grows with the log: 10 ms a pass at 5,000 events)."""
    from sqlalchemy import event

    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        store.learn_log(0, limit=10, arm="")
        ((sql, params),) = [s for s in seen if "br_rewards" in s[0]]
        with store.engine.connect() as conn:
            plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, params))  # type: ignore[arg-type]
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
        store.close()
    assert "ix_br_events_arm" not in plan
    assert "SEARCH br_rewards USING INTEGER PRIMARY KEY" in plan, plan

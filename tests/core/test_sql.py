"""Hot writes on the raw DBAPI cursor (``bandit_router.core._sql``), against SQLAlchemy Core.

Every test runs on SQLite and PostgreSQL, with the driver path on and off: both paths must
write the same rows, roll back together and report the same conflicts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bandit_router.core import _sql
from bandit_router.core._sql import DriverStatement
from bandit_router.core._store import EventConflict, EventRow, RewardRow, Store, json_dumps, new_row


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

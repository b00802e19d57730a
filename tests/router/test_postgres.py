"""The router on PostgreSQL: the database several replicas share."""

from __future__ import annotations

import pytest

from bandit_router import DuplicateRewardError, Router, RouterConfig
from bandit_router.eval.simulation import HashEmbedder, SyntheticWorkload, demo_catalog


def router(url: str) -> Router:
    return Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                  config=RouterConfig(cost_weight=50.0))


@pytest.mark.postgres
def test_select_reward_restart_on_postgres(pg_url: str) -> None:
    wl = SyntheticWorkload(seed=0)
    a = router(pg_url)
    for _ in range(30):
        task = wl.sample_task()
        d = a.select(task.text)
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        a.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd)
    pending = a.select("Translate 'Where is the station?' to Dutch.")
    a.close()
    b = router(pg_url)
    assert b.policy_version == 30
    assert b.reward(pending.event_id, quality=1.0).policy_version == 31
    b.close()


@pytest.mark.postgres
def test_replicas_share_rewards_on_postgres(pg_url: str) -> None:
    a, b = router(pg_url), router(pg_url)
    d = a.select("Is a verbal contract binding in Ontario?")
    b.reward(d.event_id, quality=0.6)
    with pytest.raises(DuplicateRewardError):
        a.reward(d.event_id, quality=0.9)
    assert a.sync() == 1
    assert a.get_routing_stats()["rewarded"] == 1
    window = b.get_routing_stats(since=d.created_at)  # the decision's own time counts
    assert window["rewarded"] == window["decisions"] == 1
    assert b.get_routing_stats(since=d.created_at + 1)["decisions"] == 0
    a.close()
    b.close()


@pytest.mark.postgres
def test_rewards_become_visible_in_seq_order_on_postgres(pg_url: str) -> None:
    """A reward whose transaction is still open holds back the ones after it, so a tailing
    replica can never move past a seq that commits later."""
    import threading
    import time

    from bandit_router.core._store import RewardRow, Store

    a, b = router(pg_url), router(pg_url)
    first = a.select("Tell me a fun fact about owls.")
    second = a.select("Tell me a fun fact about cats.")
    store = Store(pg_url)
    session = store._sessions()
    tx = session.begin()
    store._lock_rewards(session)
    session.add(RewardRow(event_id=first.event_id, received_at=0.0, quality=1.0, cost_usd=0.0,
                          latency_s=None, output_tokens=None, error=None, reward=1.0,
                          is_default=False))
    session.flush()  # first holds the lower seq, uncommitted
    done = threading.Event()
    threading.Thread(target=lambda: (b.reward(second.event_id, quality=0.5), done.set()),
                     daemon=True).start()
    time.sleep(0.5)
    assert not done.is_set()  # the later reward waits for the earlier transaction
    assert a.sync() == 0
    tx.commit()
    session.close()
    assert done.wait(10)
    assert a.sync() == 2  # both, in order: none skipped
    assert a.policy_version == 2
    for r in (a, b):
        r.close()
    store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("url_fixture", ["pg_url", "sqlite_url"])
def test_warm_start_logs_history_in_order_and_learns_it_once(
        url_fixture: str, request: pytest.FixtureRequest) -> None:
    """Labelled history is written in one executemany per table and learned from the rows
    in hand: the reward log's order is the history's, and a rebuild from the log learns the
    same policy."""
    from sqlalchemy import select

    from bandit_router.core._store import CheckpointRow, RewardRow
    from bandit_router.eval.datasets import synthetic_dataset

    url = request.getfixturevalue(url_fixture)
    history = synthetic_dataset(60, seed=2)
    first = router(url)
    assert first.warm_start(history) == 60 * len(history.models)
    with first.store.session() as s:
        rows = s.execute(select(RewardRow.seq, RewardRow.quality).order_by(RewardRow.seq)).all()
    assert [q for _, q in rows] == [float(history.quality[i, j]) for i in range(60)
                                    for j in range(len(history.models))]
    assert first._learner.seq == rows[-1][0] and first.policy_version == len(rows)
    learned = first.policy.to_bytes()
    with first.store.session() as s:  # no checkpoint: the next router relearns the log
        for row in s.scalars(select(CheckpointRow)):
            s.delete(row)
    first.store.close()
    rebuilt = router(url)
    assert rebuilt.policy_version == len(rows)
    assert rebuilt.policy.to_bytes() == learned  # the rows in hand taught what the log does
    rebuilt.close()


@pytest.mark.postgres
def test_rewards_from_many_threads_share_commits_and_settle_spend_once(pg_url: str) -> None:
    """Rewards from 8 threads at once on PostgreSQL share transactions behind the reward
    lock: every one is written once, in the log's order, and the day's spend is the sum of
    the rewarded costs (nothing settled twice by a group tried again, nothing lost)."""
    from bandit_router.core._store import Store
    from tests.conftest import run_in_threads

    a = router(pg_url)
    a.set_budget(daily_limit=1e6)
    decisions = [a.select(f"Question {i} about tidal energy in Norway.") for i in range(80)]
    costs = [0.001 * (1 + i % 7) for i in range(len(decisions))]
    writes = a.store._reward_writes
    before = (writes.groups, writes.writes)

    def work(k: int) -> None:
        for i in range(k, len(decisions), 8):
            a.reward(decisions[i].event_id, quality=0.5, cost_usd=costs[i], learn=False)

    assert run_in_threads(work, 8) == []
    groups, held = writes.groups - before[0], writes.writes - before[1]
    assert held == len(decisions) and groups < held  # some rewards shared a commit
    reader = Store(pg_url)
    seqs = [item.reward.seq for item in reader.learn_log(0)]
    assert len(seqs) == len(decisions) and seqs == sorted(seqs)
    reader.close()
    spent = {s.budget.id: s for s in a.budget_status()}["router|day"]
    assert spent.spent_usd == pytest.approx(sum(costs))
    assert spent.reserved_usd == pytest.approx(0.0, abs=1e-12)
    assert a.sync() == len(decisions)
    a.close()


@pytest.mark.postgres
def test_a_reward_and_a_budgeted_decision_wait_for_three_round_trips(pg_url: str) -> None:
    """Through the router on PostgreSQL (pool checks left out): a reward that reads its
    observation first (no cost given), and a decision with four budgets in force (the
    plan's read of the spend; the write, whose re-check reads wait once; its COMMIT)."""
    from bandit_router.core import _sql
    from tests.conftest import FakeClock
    from tests.core.test_sql import _round_trips

    if not _sql._pipeline_supported():
        pytest.skip("this libpq has no pipeline mode")
    clock = FakeClock()  # budgets and cooldowns are not due for a refresh meanwhile
    a = Router(database_url=pg_url, catalog=demo_catalog(), embedder=HashEmbedder(),
               config=RouterConfig(cost_weight=50.0), clock=clock)
    d = a.select("Name three rivers in Peru.")
    assert _round_trips(a.store, lambda: a.reward(d.event_id, quality=0.5, learn=False)) == 3
    a.set_budget(hourly_limit=1e6, daily_limit=1e6, per_request_limit=10.0)
    a.set_budget(daily_limit=1e6, scope="tenant:t")
    a.select("Name three rivers in Chile.", tenant="t")
    assert _round_trips(a.store, lambda: a.select("Name three rivers in Peru, again.",
                                                  tenant="t")) == 3
    a.close()

"""The router on PostgreSQL: the database several replicas share."""

from __future__ import annotations

import pytest

from bandit_router import DuplicateRewardError, Router, RouterConfig
from bandit_router.simulation import HashEmbedder, SyntheticWorkload, demo_catalog


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
    assert b._learner.learned == 30
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
    a.close()
    b.close()

"""kNN-greedy against random on the simulated workload, through the real router."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bandit_router import Router
from bandit_router.core.policies import KNNGreedyPolicy, Policy, RandomPolicy
from bandit_router.eval.simulation import SyntheticWorkload


def _mean_reward(make_router: Callable[..., Router], policy: Policy) -> float:
    router = make_router(database_url="sqlite://", policy=policy)
    wl = SyntheticWorkload(seed=5)
    rewards = []
    for i in range(500):
        task = wl.sample_task()
        d = router.select(task.text, event_id=f"g{i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        rewards.append(router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd).reward)
    return sum(rewards[250:]) / 250


def test_knn_greedy_learns_through_the_memory(make_router: Callable[..., Router]) -> None:
    greedy = _mean_reward(make_router, KNNGreedyPolicy(epsilon=0.05, seed=0))
    random = _mean_reward(make_router, RandomPolicy(seed=0))
    assert greedy > random + 0.1


def test_epsilon_is_checked() -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            KNNGreedyPolicy(epsilon=bad)

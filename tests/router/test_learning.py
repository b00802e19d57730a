"""The issue's learning test on the real path: real MiniLM, real VW, a real SQLite file."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import OnnxEmbedder, PolicyConfig, Router, RouterConfig
from bandit_router.eval.simulation import TOPICS, SyntheticWorkload, demo_catalog

COST_WEIGHT = 50.0
ROUNDS = 3000
LAST = 1000


@pytest.mark.slow
def test_router_learns_the_per_topic_best_model(minilm: OnnxEmbedder,
                                               sqlite_url: str) -> None:
    wl = SyntheticWorkload(seed=0)
    router = Router(database_url=sqlite_url, catalog=demo_catalog(), embedder=minilm,
                    policy=PolicyConfig(seed=0), config=RouterConfig(cost_weight=COST_WEIGHT))
    topics, picks = [], []
    for i in range(ROUNDS):
        task = wl.sample_task()
        d = router.select(task.text, event_id=f"learn-{i}")
        key = f"{d.provider}/{d.model}"
        o = wl.outcome(task, key)
        router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s,
                      output_tokens=o.output_tokens)
        topics.append(task.topic)
        picks.append(key)
    router.close()

    def mean_reward(choose) -> float:  # expected reward of a strategy on the last tasks
        return float(np.mean([wl.expected_reward(t, choose(t, i), COST_WEIGHT)
                              for i, t in enumerate(topics[-LAST:])]))

    tail = picks[-LAST:]
    best_rate = np.mean([p == wl.best_model(t, COST_WEIGHT)
                         for p, t in zip(tail, topics[-LAST:], strict=True)])
    chance = 1 / len(wl.keys)
    router_reward = mean_reward(lambda t, i: tail[i])
    random_reward = float(np.mean([[wl.expected_reward(t, k, COST_WEIGHT) for k in wl.keys]
                                   for t in topics[-LAST:]]))
    cheapest = mean_reward(lambda t, i: wl.cheapest)
    strongest = mean_reward(lambda t, i: wl.strongest)
    oracle = mean_reward(lambda t, i: wl.best_model(t, COST_WEIGHT))
    print(f"best-model rate {best_rate:.3f} (chance {chance:.2f}); reward router "
          f"{router_reward:.3f}, random {random_reward:.3f}, cheapest {cheapest:.3f}, "
          f"strongest {strongest:.3f}, oracle {oracle:.3f}")
    assert best_rate > 3 * chance
    assert router_reward > random_reward + 0.15
    assert router_reward > cheapest + 0.2
    assert router_reward > strongest + 0.03
    assert router_reward > oracle - 0.05
    for topic in TOPICS:  # every topic's favourite is a sensible model, not noise
        mine = [p for p, t in zip(tail, topics[-LAST:], strict=True) if t == topic]
        assert max(mine.count(k) for k in wl.keys) / len(mine) > 0.4

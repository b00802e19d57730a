from __future__ import annotations

import numpy as np

from bandit_router.eval.simulation import TOPICS, HashEmbedder, SyntheticWorkload, demo_catalog


def test_workload_is_deterministic_for_a_seed() -> None:
    a, b = SyntheticWorkload(seed=3), SyntheticWorkload(seed=3)
    ta, tb = a.tasks(20), b.tasks(20)
    assert ta == tb
    assert [a.outcome(t, "budget/tiny") for t in ta] == [b.outcome(t, "budget/tiny") for t in tb]


def test_best_model_depends_on_topic_and_cost_weight() -> None:
    wl = SyntheticWorkload()
    best = {t: wl.best_model(t, 50.0) for t in TOPICS}
    assert len(set(best.values())) >= 4
    assert all(wl.best_model(t, 0.0) != wl.cheapest for t in ("code", "maths", "law"))
    assert wl.best_model("maths", 1e6) == wl.cheapest
    assert {s.key for s in demo_catalog()} == set(wl.keys)


def test_outcomes_are_in_range_and_follow_prices() -> None:
    wl = SyntheticWorkload(seed=1)
    for task in wl.tasks(50):
        cheap, dear = wl.outcome(task, "budget/tiny"), wl.outcome(task, "frontier/large")
        assert 0 <= cheap.quality <= 1 and cheap.latency_s > 0 and cheap.output_tokens >= 1
        assert dear.cost_usd > cheap.cost_usd


def test_hash_embedder_is_unit_norm_and_topical() -> None:
    e = HashEmbedder()
    v = e.embed(["Translate 'hi' to French", "Translate 'hi' to German", "Solve 3x + 1 = 7"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]

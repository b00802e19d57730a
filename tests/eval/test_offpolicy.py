"""Off-policy estimators: the truth falls inside the interval at the stated rate."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from bandit_router import PolicyConfig, Router, RouterConfig
from bandit_router.eval.offpolicy import (
    dr,
    evaluate,
    evaluate_setting,
    ips,
    logged_events,
    snips,
)
from bandit_router.eval.simulation import HashEmbedder, SyntheticWorkload, demo_catalog


def simulated_log(rng: np.random.Generator, n: int = 2000, k: int = 4):
    """Contexts in 3 groups, 4 actions with known mean rewards, epsilon-greedy logging."""
    means = np.array([[0.2, 0.5, 0.7, 0.4], [0.6, 0.3, 0.2, 0.5], [0.3, 0.3, 0.4, 0.9]])
    group = rng.integers(3, size=n)
    greedy = np.array([1, 0, 2])  # the logger's favourite per group (not the best)
    eps = 0.4
    pmf = np.full((n, k), eps / k)
    pmf[np.arange(n), greedy[group]] += 1 - eps
    chosen = np.array([rng.choice(k, p=p) for p in pmf])
    reward = (rng.random(n) < means[group, chosen]).astype(float)
    target_action = np.array([2, 0, 3])[group]  # the target: the true best per group
    truth = float(means[[0, 1, 2], [2, 0, 3]] @ np.bincount(group, minlength=3) / n)
    return group, chosen, pmf, reward, target_action, truth, means


@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_intervals_cover_the_truth_at_the_stated_rate(estimator: str) -> None:
    rng = np.random.default_rng(0)
    hits, trials = 0, 200
    for _ in range(trials):
        _, chosen, pmf, reward, target, truth, _ = simulated_log(rng)
        n = len(chosen)
        w = (chosen == target) / pmf[np.arange(n), chosen]
        if estimator == "ips":
            est = ips(w, reward)
        elif estimator == "snips":
            est = snips(w, reward)
        else:  # a deliberately crude reward model: the overall mean of each action
            per_action = np.array([reward[chosen == a].mean() for a in range(4)])
            est = dr(w, reward, per_action[chosen], per_action[target])
        hits += est.low <= truth <= est.high
    assert 0.90 <= hits / trials <= 0.99  # nominal 95%


@pytest.mark.parametrize("estimator", [ips, snips])
def test_one_event_gives_a_value_and_an_unbounded_interval(estimator: Any) -> None:
    est = estimator(np.array([2.0]), np.array([0.5]))
    assert not math.isnan(est.value) and est.n == 1
    assert (est.low, est.high) == (-math.inf, math.inf)  # no spread from one term


def test_evaluate_a_fixed_policy_on_simulated_log() -> None:
    from bandit_router.eval.offpolicy import LoggedEvent

    rng = np.random.default_rng(1)
    group, chosen, pmf, reward, _, truth, _ = simulated_log(rng, n=5000)
    events = [LoggedEvent(context={"g": int(g)}, actions=[{}] * 4, keys=list("abcd"),
                          chosen=int(c), probability=float(p[c]), reward=float(r),
                          quality=float(r), cost_usd=0.0, latency_s=None, cost_weight=0.0,
                          latency_weight=0.0)
              for g, c, p, r in zip(group, chosen, pmf, reward, strict=True)]
    best = {0: 2, 1: 0, 2: 3}
    report = evaluate(events, lambda ctx, acts: np.eye(4)[best[ctx["g"]]])
    for est in (report.ips, report.snips, report.dr):
        assert est.low <= truth <= est.high
    assert report.logged.value < truth - 0.1  # the logger was worse than the target
    assert 0 < report.effective_sample_size < len(events)


def test_evaluate_settings_on_a_routers_own_log(tmp_path) -> None:
    router = Router(database_url=f"sqlite:///{tmp_path / 'r.db'}", catalog=demo_catalog(),
                    embedder=HashEmbedder(), policy=PolicyConfig(exploration="epsilon",
                                                                 epsilon=0.5),
                    config=RouterConfig(cost_weight=50.0))
    wl = SyntheticWorkload(seed=0)
    for i in range(1500):
        task = wl.sample_task()
        d = router.select(task.text, event_id=f"e{i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd)
    events = logged_events(router)
    assert len(events) == 1500
    same = evaluate_setting(events, policy=PolicyConfig(exploration="epsilon", epsilon=0.5),
                            input_dim=384)
    # on-policy sanity: the same settings are worth about what was logged
    assert abs(same.snips.value - same.logged.value) < 0.05
    greedier = evaluate_setting(events, policy=PolicyConfig(), input_dim=384)
    assert greedier.snips.value > same.logged.value + 0.03  # squareCB beats 50% exploration
    dearer = evaluate_setting(events, policy=PolicyConfig(), cost_weight=500.0, input_dim=384)
    assert dearer.snips.value < greedier.snips.value  # every reward pays 10x for cost
    # a setting that changes decisions only is evaluated too: the target weighs baselines
    hopeful = PolicyConfig(exploration="squarecb", optimism=0.2, gamma_scale=400)
    plain = evaluate_setting(events, policy=hopeful, input_dim=384)
    trusting = evaluate_setting(events, policy=replace(hopeful, baseline_strength=10.0),
                                input_dim=384)
    assert trusting.snips.value != pytest.approx(plain.snips.value, abs=1e-6)
    router.close()

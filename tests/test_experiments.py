"""A/B experiments: sticky assignment, per-arm learning, detection and A/A error rate."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import InvalidInputError, Router, RouterConfig, UnknownEventError
from bandit_router.experiments import Experiment, compare_means
from bandit_router.policies import RandomPolicy
from bandit_router.simulation import HashEmbedder, SyntheticWorkload, demo_catalog


def arm(url: str, name: str, **kwargs) -> Router:
    return Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                  config=RouterConfig(cost_weight=50.0), arm=name, **kwargs)


def test_assignment_is_sticky_and_follows_the_shares(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    exp = Experiment("shares", {"A": arm(url, "A"), "B": arm(url, "B")},
                     shares={"A": 0.8, "B": 0.2})
    arms = [exp.assign(f"user-{i}") for i in range(20_000)]
    assert abs(arms.count("B") / len(arms) - 0.2) < 0.01
    assert all(exp.assign(f"user-{i}") == arms[i] for i in range(0, 20_000, 97))
    other = Experiment("another-name", {"A": arm(url, "A"), "B": arm(url, "B")})
    assert [other.assign(f"user-{i}") for i in range(200)] != arms[:200]
    with pytest.raises(InvalidInputError):  # two arms may not share a tag
        Experiment("bad", {"A": arm(url, "same"), "B": arm(url, "same")})
    with pytest.raises(InvalidInputError):  # the untagged main router is no arm
        Experiment("bad", {"A": arm(url, "A"), "B": arm(url, "")})


def test_a_truly_better_arm_is_detected_and_promoted(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ab.db'}"
    control = arm(url, "random", policy=RandomPolicy(seed=0))
    treatment = arm(url, "bandit")
    exp = Experiment("router-vs-random", {"random": control, "bandit": treatment})
    wl = SyntheticWorkload(seed=0)
    for i in range(1600):
        task = wl.sample_task()
        d = exp.select(task.text, unit_key=f"user-{i % 400}", event_id=f"ab-{i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        exp.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s)
    stats = exp.stats()
    assert stats["random"].requests + stats["bandit"].requests == 1600
    assert control.policy_version == stats["random"].requests  # each learns only its own
    assert treatment.policy_version == stats["bandit"].requests
    result = exp.compare("random", "bandit")
    assert result.significant and result.difference > 0.05 and result.low > 0
    assert stats["bandit"].reward.value > stats["random"].reward.value
    exp.promote("bandit")
    assert {exp.assign(f"user-{i}") for i in range(50)} == {"bandit"}
    with pytest.raises(UnknownEventError):
        exp.reward("no-such-event", quality=1.0)
    event = control.store.get_event("ab-0")
    assert event is not None and event.meta["experiment"] == "router-vs-random"
    # arms restore their own policy: a fresh router for the arm relearns only its events
    again = arm(url, "bandit")
    assert again.policy_version == treatment.policy_version


def test_a_a_tests_find_differences_at_the_stated_rate() -> None:
    rng = np.random.default_rng(0)
    trials, false = 2000, 0
    for _ in range(trials):
        a = rng.normal(0.7, 0.2, size=300)
        b = rng.normal(0.7, 0.2, size=300)
        false += compare_means(a, b).significant
    assert 0.03 <= false / trials <= 0.07  # nominal 5%
    power = np.mean([compare_means(rng.normal(0.7, 0.2, 300), rng.normal(0.75, 0.2, 300))
                     .significant for _ in range(500)])
    # theory: z = 0.05 / (0.2 * sqrt(2 / 300)) = 3.06, so power = P(Z > 1.96 - 3.06) = 0.86
    assert 0.80 <= power <= 0.92

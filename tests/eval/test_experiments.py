"""A/B experiments: sticky assignment, per-arm learning, detection and A/A error rate."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import (
    Constraints,
    Decision,
    InvalidInputError,
    NoEligibleModelError,
    Router,
    RouterConfig,
    UnknownEventError,
    UnknownModelError,
)
from bandit_router.core.policies import RandomPolicy
from bandit_router.eval.experiments import Arm, Experiment, compare_means
from bandit_router.eval.simulation import HashEmbedder, SyntheticWorkload, demo_catalog


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


def test_a_fixed_model_arm_routes_only_to_its_model_with_probability_one(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fixed.db'}"
    strongest = Arm(router=arm(url, "strongest"), fixed_model="frontier/large")
    exp = Experiment("vs-strongest", {"strongest": strongest, "bandit": arm(url, "bandit")})
    wl = SyntheticWorkload(seed=1)
    fixed_events = []
    for i in range(300):
        task = wl.sample_task()
        d = exp.select(task.text, unit_key=f"user-{i % 60}", event_id=f"fx-{i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        exp.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s)
        if exp.assign(f"user-{i % 60}") == "strongest":
            assert (d.provider, d.model, d.probability, d.alternatives) == (
                "frontier", "large", 1.0, ())
            fixed_events.append(d.event_id)
    assert len(fixed_events) > 50
    for event_id in fixed_events[:20]:  # logged as any decision: p = 1, its arm, its reward
        record = strongest.router.get_event(event_id)
        assert record.probability == 1.0 and record.eligible == ["frontier/large"]
        assert record.metadata["arm"] == record.arm == "strongest" and record.reward is not None
        assert record.constraints["allowed_models"] == ["frontier/large"]
    stats = exp.stats()
    assert stats["strongest"].requests == len(fixed_events)
    assert stats["strongest"].fixed_model == "frontier/large"
    assert stats["strongest"].quality.value > 0.85  # frontier/large's mean quality is ~0.91
    assert stats["bandit"].fixed_model is None and stats["bandit"].models is None
    assert strongest.router.policy_version == len(fixed_events)  # it learns its own only
    report = exp.report()
    assert report.control == "strongest" and report.status == "running"
    (cmp,) = report.comparisons
    assert (cmp.a, cmp.b, cmp.metric) == ("strongest", "bandit", "reward")
    # a request whose constraints rule the fixed model out gets no other model
    user = next(f"u{i}" for i in range(100) if exp.assign(f"u{i}") == "strongest")
    with pytest.raises(NoEligibleModelError) as err:
        exp.select("Hi there!", unit_key=user,
                   constraints=Constraints(excluded_models=["large"]))
    assert "excluded by the request" in err.value.reasons["frontier/large"]
    with pytest.raises(NoEligibleModelError):  # too dear for this request
        exp.select("Hi there!", unit_key=user, constraints=Constraints(max_cost_usd=1e-9))
    # a named arm (a canary request) while it runs; an arm it lacks is refused
    def arm_of(d: Decision) -> str:
        return str(strongest.router.get_event(d.event_id).metadata["arm"])

    assert arm_of(exp.select("Hi there!", unit_key=user, arm="bandit")) == "bandit"
    with pytest.raises(UnknownModelError):
        exp.select("Hi there!", unit_key=user, arm="nope")
    exp.stop()
    assert exp.report().status == "stopped" and exp.assign("anyone") == "strongest"
    # stopped: a request naming the other arm goes to the arm that serves everyone
    assert arm_of(exp.select("Hi there!", unit_key=user, arm="bandit")) == "strongest"


def test_a_subset_arm_routes_within_its_models(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'subset.db'}"
    cheap = Arm(router=arm(url, "cheap"), models=["tiny", "opencode/coder"])
    assert cheap.models == ("opencode/coder", "budget/tiny")  # catalog keys, catalog order
    exp = Experiment("subset", {"all": arm(url, "all"), "cheap": cheap}, shares={
        "all": 0.0, "cheap": 1.0})
    wl = SyntheticWorkload(seed=2)
    seen = set()
    for i in range(200):
        task = wl.sample_task()
        d = exp.select(task.text, unit_key=f"user-{i}", event_id=f"sub-{i}")
        seen.add(f"{d.provider}/{d.model}")
        assert {f"{a.provider}/{a.model}" for a in d.alternatives} <= set(cheap.models)
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        exp.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd)
    assert seen == {"opencode/coder", "budget/tiny"}  # it explores within the subset
    assert exp.stats()["cheap"].models == ("opencode/coder", "budget/tiny")
    # the request's own constraints narrow the arm's models further
    d = exp.select("Write a Go function that caches results.", unit_key="u",
                   constraints=Constraints(allowed_models=["coder", "frontier/large"]))
    assert (d.model, d.probability) == ("coder", 1.0)
    d = exp.select("Hi!", unit_key="u", constraints=Constraints(excluded_models=["coder"]))
    assert d.model == "tiny"
    with pytest.raises(NoEligibleModelError) as err:
        exp.select("Hi!", unit_key="u", constraints=Constraints(allowed_models=["large"]))
    assert "not a model of experiment arm 'cheap'" in err.value.reasons["frontier/large"]
    with pytest.raises(UnknownModelError, match="gpt-5"):  # typos are not silently ignored
        exp.select("Hi!", unit_key="u", constraints=Constraints(allowed_models=["gpt-5"]))


def test_arm_models_are_checked_against_the_catalog(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'names.db'}"
    router = arm(url, "x")
    with pytest.raises(UnknownModelError, match="openai/gpt-4o"):
        Arm(router=router, fixed_model="openai/gpt-4o")  # not in the demo catalog
    with pytest.raises(UnknownModelError, match="nope"):
        Arm(router=router, models=["tiny", "nope"])
    with pytest.raises(InvalidInputError, match="not both"):
        Arm(router=router, models=["tiny"], fixed_model="tiny")
    with pytest.raises(InvalidInputError):
        Arm(router=router, models=[])
    with pytest.raises(InvalidInputError):
        Arm(router=router, models="tiny")  # a string is not a list of names
    with pytest.raises(InvalidInputError):
        Arm(router="not a router", fixed_model="tiny")  # type: ignore[arg-type]
    two = demo_catalog().to_dict()
    two["models"].append({**two["models"][-1], "provider": "other"})
    from bandit_router import Catalog

    shared = Router(database_url=url, catalog=Catalog.from_dict(two), embedder=HashEmbedder(),
                    arm="y")
    with pytest.raises(InvalidInputError, match="provider/model"):
        Arm(router=shared, fixed_model="tiny")  # served by two providers: ambiguous
    assert Arm(router=shared, models=["tiny"]).models == ("budget/tiny", "other/tiny")


def test_a_learning_arm_beats_a_fixed_cheap_model_arm(tmp_path) -> None:
    """The classic control: "always the cheapest model" against the bandit, on simulated
    traffic; the test finds the bandit better on reward, the cheap arm cheaper."""
    url = f"sqlite:///{tmp_path / 'cheap.db'}"
    exp = Experiment("bandit-vs-tiny", {
        "tiny": Arm(router=arm(url, "tiny"), fixed_model="budget/tiny"),
        "bandit": arm(url, "bandit")})
    wl = SyntheticWorkload(seed=3)
    for i in range(600):
        task = wl.sample_task()
        d = exp.select(task.text, unit_key=f"user-{i % 200}", event_id=f"t-{i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        exp.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s)
    stats = exp.stats()
    assert stats["tiny"].requests + stats["bandit"].requests == 600
    assert min(stats["tiny"].requests, stats["bandit"].requests) > 200
    reward = exp.compare("tiny", "bandit")
    # expected reward at cost weight 50: always-tiny 0.44, random 0.60, per-topic best 0.84
    assert reward.significant and reward.low > 0.1
    quality = exp.compare("tiny", "bandit", metric="quality")
    assert quality.significant and quality.difference > 0.2
    cost = exp.compare("tiny", "bandit", metric="cost")
    assert cost.significant and cost.difference > 0  # the control is cheaper
    assert stats["tiny"].latency_s is not None

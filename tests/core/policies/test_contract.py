"""One contract, run against every policy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from bandit_router import EXPLORATIONS, PolicyConfig
from bandit_router.core.policies import KNNGreedyPolicy, Policy, RandomPolicy, VWPolicy

FACTORIES: dict[str, Callable[[int], Policy]] = {
    "random": lambda seed: RandomPolicy(seed=seed),
    "knn-greedy": lambda seed: KNNGreedyPolicy(epsilon=0.1, seed=seed),
    **{f"vw-{e}": (lambda seed, e=e: VWPolicy(PolicyConfig(exploration=e, seed=seed),
                                              input_dim=16))
       for e in EXPLORATIONS},
    "vw-squarecb-optimism": lambda seed: VWPolicy(
        PolicyConfig(exploration="squarecb", optimism=0.2, seed=seed), input_dim=16),
    "vw-thompson-as-the-router-runs-it": lambda seed: VWPolicy(
        PolicyConfig(exploration="thompson", seed=seed), input_dim=16,
        pinned={"A": {"cost": -1.0}}, baseline={"A": {"cost": -1.0}}, groups=("K",),
        learned_range=(0.0, 1.0), evidence=("A", "evidence", 2.0)),
    "vw-squarecb-optimism-baseline": lambda seed: VWPolicy(
        PolicyConfig(exploration="squarecb",
                     optimism=0.2, baseline_strength=10.0, seed=seed), input_dim=16,
        baseline={"A": {"cost": -1.0}}),
}


def context(rng: np.random.Generator) -> dict:
    vec = rng.normal(size=16).astype(np.float32)
    return {"E": vec / np.linalg.norm(vec), "T": {"len": float(rng.random())}}


def actions(n: int) -> list[dict]:
    return [{"M": {f"m{i}": 1.0}, "A": {"cost": 0.1 * i}} for i in range(n)]


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Callable[[int], Policy]:
    return FACTORIES[request.param]


def test_pmf_is_a_distribution_over_the_given_actions(factory: Callable[[int], Policy]) -> None:
    policy, rng = factory(0), np.random.default_rng(0)
    for n in (1, 2, 5, 13):
        pmf = policy.pmf(context(rng), actions(n))
        assert len(pmf) == n
        assert all(p >= 0 for p in pmf) and sum(pmf) == pytest.approx(1.0, abs=1e-4)


def test_predict_returns_the_probability_of_its_choice(factory: Callable[[int], Policy]) -> None:
    policy, rng = factory(0), np.random.default_rng(1)
    for _ in range(20):
        ctx, acts = context(rng), actions(4)
        index, probability, pmf, _ = policy.decide(ctx, acts)
        assert 0 <= index < 4 and probability == pytest.approx(pmf[index]) and probability > 0
        policy.learn(ctx, acts, index, reward=float(index == 2), probability=probability)


def test_same_seed_same_choices(factory: Callable[[int], Policy]) -> None:
    def run(seed: int) -> list[int]:
        policy, rng = factory(seed), np.random.default_rng(2)
        out = []
        for _ in range(30):
            ctx, acts = context(rng), actions(3)
            i, p = policy.predict(ctx, acts)
            policy.learn(ctx, acts, i, reward=float(i == 1), probability=p)
            out.append(i)
        return out

    assert run(5) == run(5)


def test_state_round_trips(factory: Callable[[int], Policy]) -> None:
    policy, rng = factory(0), np.random.default_rng(3)
    for _ in range(50):
        ctx, acts = context(rng), actions(3)
        i, p = policy.predict(ctx, acts)
        policy.learn(ctx, acts, i, reward=float(i == 0), probability=p)
    fresh = factory(0)
    fresh.load_bytes(policy.to_bytes()) if policy.to_bytes() else None
    probe = context(rng)
    assert np.allclose(policy.pmf(probe, actions(3)), fresh.pmf(probe, actions(3)), atol=1e-6)


@pytest.mark.parametrize("name", sorted(k for k in FACTORIES if k.startswith("vw-")))
def test_every_vw_exploration_learns_on_the_routers_reward_scale(name: str) -> None:
    """Rewards as the router gives them (a quality in [0, 1] less a cost): every exploration
    must come to prefer the model that pays. RegCB once ignored them all, because VW's
    default cost bounds [0, 1] clipped every negated reward to 0."""
    policy, rng = FACTORIES[name](0), np.random.default_rng(5)
    acts = actions(4)
    for _ in range(600):
        ctx = context(rng)
        i, p = policy.predict(ctx, acts)
        quality = float(rng.random() < (0.9 if i == 2 else 0.3))
        policy.learn(ctx, acts, i, reward=quality - 0.1 * i, probability=p)
    pmf = policy.pmf(context(rng), acts)
    assert int(np.argmax(pmf)) == 2 and pmf[2] > 0.5

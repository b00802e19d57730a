"""Thompson sampling: the cluster posterior, the stacker, the distribution, the adapter."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import PolicyConfig
from bandit_router.core.policies import VWPolicy
from bandit_router.core.policies._thompson import (
    ClusterPosterior,
    NormalTable,
    Stacker,
    thompson_pmf,
)


def test_each_level_pools_its_outcomes_from_the_level_above() -> None:
    post = ClusterPosterior(prior_strength=4.0, memory=1e9)
    for _ in range(10):
        post.update([("m",), ("K:a", "m")], 1.0)
    # the model level gives the outcome variance, not the mean: the prior weighs 2
    mean, precision, variance = post.estimate(0.5, [("m",), ("K:a", "m")],
                                              prior_precision=2.0)
    inner = 1.0 / (1.0 / 2.0 + 1.0 / 4.0)  # the prior, at most the level's strength
    assert precision == pytest.approx(inner + 10)
    assert mean == pytest.approx((inner * 0.5 + 10) / (inner + 10))
    assert variance == pytest.approx(0.5 / 11)  # no spread, plus two outcomes of 0.25
    # a cluster the model was never tried in keeps the prior's mean and little precision
    mean, precision, _ = post.estimate(0.5, [("m",), ("K:b", "m")], prior_precision=2.0)
    assert mean == 0.5 and precision == pytest.approx(inner)


def test_outcomes_are_discounted() -> None:
    post = ClusterPosterior(prior_strength=4.0, memory=50)
    cells = [("m",), ("K:a", "m")]
    for _ in range(300):
        post.update(cells, 1.0)
    for _ in range(100):
        post.update(cells, 0.0)  # the model got worse
    mean, precision, _ = post.estimate(0.5, cells)
    assert mean < 0.2 and precision < 60


def test_a_cell_whose_latest_outcomes_changed_forgets_what_came_before() -> None:
    """The change detector: a model that was good at a kind of task for hundreds of outcomes
    and got worse is found out within its window, not after about ``memory`` outcomes; a
    steady noisy model is left alone."""
    def after(drop: float, rng: np.random.Generator) -> tuple[float, float]:
        post = ClusterPosterior(prior_strength=4.0, memory=1000, recent=20)
        cells = [("m",), ("K:a", "m")]
        for _ in range(400):
            post.update(cells, float(rng.random() < 0.9))
        for _ in range(30):
            post.update(cells, float(rng.random() < 0.9 - drop))
        mean, precision, _ = post.estimate(0.5, cells)
        return mean, precision

    rng = np.random.default_rng(5)
    mean, precision = after(0.5, rng)
    assert mean < 0.6 and precision < 40  # plain discounting: still ~0.87 from ~400
    mean, precision = after(0.0, rng)
    assert mean > 0.8 and precision > 300


def test_the_strength_of_a_level_is_estimated_from_its_cells() -> None:
    rng = np.random.default_rng(0)

    def fitted(spread: float) -> float:
        post = ClusterPosterior(prior_strength=20.0, memory=1e9)
        for model in ("x", "y", "z"):
            for cluster in range(6):
                centre = 0.5 + spread * (cluster % 2 - 0.5)
                for _ in range(60):
                    post.update([(model,), (f"K:{cluster}", model)],
                                float(rng.random() < centre))
        post.refit()
        return post.strengths[1]

    assert fitted(0.8) < 3  # clusters far apart: each learns on its own
    assert fitted(0.0) > 100  # clusters alike: pooled
    assert ClusterPosterior(prior_strength=7.0, memory=10).estimate(0.3, [("m",)]) == (
        0.3, 1.0, 0.25)


def test_the_posterior_survives_its_state_and_refuses_a_damaged_one() -> None:
    post = ClusterPosterior(prior_strength=5.0, memory=100)
    for k in range(30):
        post.update([("m",), ("K:a", "m"), ("K:b", "m")], float(k % 3 == 0))
    again = ClusterPosterior.from_state(post.to_state(), prior_strength=5.0, memory=100)
    cells = [("m",), ("K:a", "m"), ("K:b", "m")]
    assert again.estimate(0.5, cells) == pytest.approx(post.estimate(0.5, cells))
    assert again.parents == post.parents and again.depths == post.depths
    for bad in ([[["m"], None, 0, 1.0, 1.0, -1.0]], [["m", None, 0, 1.0, 1.0, 1.0]],
                [[["m"], None, 0.5, 1, 1, 1]], [[["m"], None, 0, float("nan"), 1, 1]], "x"):
        with pytest.raises(ValueError, match="damaged Thompson state"):
            ClusterPosterior.from_state(bad, prior_strength=5.0, memory=100)


def test_the_stacker_trusts_whichever_predicted_the_outcomes() -> None:
    rng = np.random.default_rng(1)
    vw_right, posterior_right = Stacker(memory=2000), Stacker(memory=2000)
    for _ in range(500):
        truth = float(rng.random())
        outcome = float(rng.random() < truth)
        vw_right.update(outcome, truth, 0.5)
        posterior_right.update(outcome, 0.5 + 0.4 * float(rng.normal()), truth)
    assert vw_right.weight() > 0.8 and posterior_right.weight() < 0.1
    again = Stacker(memory=2000)
    again.load_state(vw_right.to_state())
    assert again.weight() == vw_right.weight()
    with pytest.raises(ValueError):
        again.load_state([1.0, -2.0])


def test_a_model_that_cannot_pay_for_itself_is_never_drawn() -> None:
    normals = np.random.default_rng(2).standard_normal((256, 2))
    means, sds, offsets = [0.6, 0.95], [0.01, 0.5], [0.0, -0.45]
    clipped = thompson_pmf(means, sds, normals=normals, offsets=offsets, low=0.0, high=1.0)
    assert clipped == [1.0, 0.0]  # even a perfect answer leaves it at 0.55 < 0.6
    unclipped = thompson_pmf(means, sds, normals=normals, offsets=offsets)
    assert unclipped[1] > 0.1


def _policy(groups: tuple[str, ...]) -> VWPolicy:
    # no interactions: VW alone cannot tell the clusters apart, the posterior can
    return VWPolicy(PolicyConfig(exploration="thompson", interactions=(), seed=4),
                    input_dim=8, pinned={"A": {"cost": -1.0}},
                    baseline={"A": {"quality": 1.0, "cost": -1.0}}, groups=groups,
                    learned_range=(0.0, 1.0), evidence=("A", "evidence", 2.0))


def _specialists(policy: VWPolicy, rounds: int) -> tuple[float, float]:
    """Two clusters, each with its own best model; the share of the right model in each."""
    rng = np.random.default_rng(3)
    acts = [{"M": {"a": 1.0}, "A": {"cost": 0.0, "quality": 0.5, "evidence": 0.0}},
            {"M": {"b": 1.0}, "A": {"cost": 0.0, "quality": 0.5, "evidence": 0.0}}]
    best = {"c0": 0, "c1": 1}
    for k in range(rounds):
        cluster = f"c{k % 2}"
        ctx = {"T": {"x": 1.0}, "K": {cluster: 1.0}}
        i, p, _, memo = policy.decide(ctx, acts)
        quality = float(rng.random() < (0.9 if i == best[cluster] else 0.3))
        policy.learn(ctx, acts, i, reward=quality, probability=p, memo=memo)
    share = [policy.pmf({"T": {"x": 1.0}, "K": {c: 1.0}}, acts, draw=0.5)[best[c]]
             for c in ("c0", "c1")]
    return share[0], share[1]


def test_each_cluster_finds_its_own_specialist() -> None:
    with_clusters = _specialists(_policy(("K",)), 400)
    assert min(with_clusters) > 0.9
    without = _specialists(_policy(()), 400)  # one posterior per model: a coin toss
    assert min(without) < 0.8


def test_the_distribution_is_fixed_by_the_draw() -> None:
    """The decision's draw seeds the posterior draws: one decision, one distribution, which
    decide() samples from and logs."""
    policy = _policy(("K",))
    ctx = {"T": {"x": 1.0}, "K": {"c0": 1.0}}
    acts = [{"M": {m: 1.0}, "A": {"cost": 0.0, "quality": 0.5, "evidence": 0.0}}
            for m in "abc"]
    first = policy.pmf(ctx, acts, draw=0.25)
    assert policy.pmf(ctx, acts, draw=0.25) == first
    assert policy.decide(ctx, acts, draw=0.25).pmf == pytest.approx(first)
    assert any(policy.pmf(ctx, acts, draw=k / 12) != first for k in range(12) if k != 3)


def test_a_thompson_state_is_not_loaded_by_another_exploration() -> None:
    thompson = _policy(("K",))
    data = thompson.to_bytes()
    assert data.startswith(b"bandit-router thompson state\n")
    other = VWPolicy(PolicyConfig(exploration="squarecb",
                                  optimism=0.2, interactions=()), input_dim=8)
    with pytest.raises(ValueError, match="other exploration settings"):
        other.load_bytes(data)
    with pytest.raises(ValueError, match="other exploration settings"):
        _policy(("K",)).load_bytes(other.to_bytes())
    # a state written before the change detector (three sums per cell) still loads
    post = ClusterPosterior(prior_strength=4.0, memory=100)
    post.update([("m",), ("K:a", "m")], 1.0)
    old = [row[:6] for row in post.to_state()]
    again = ClusterPosterior.from_state(old, prior_strength=4.0, memory=100)
    assert again.cells[("K:a", "m")][:3] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="damaged Thompson state"):
        ClusterPosterior.from_state([row[:5] for row in post.to_state()], prior_strength=4.0,
                                    memory=100)
    damaged = data.replace(b'"stacker":[', b'"stacker":["x",', 1)
    with pytest.raises(ValueError, match="damaged Thompson state"):
        _policy(("K",)).load_bytes(damaged)


def test_policy_arguments_are_checked() -> None:
    for kwargs in ({"groups": "K"}, {"groups": ("KK",)}, {"learned_range": (1.0, 0.0)},
                   {"evidence": ("A", "evidence", 0.0)}, {"evidence": ("AA", "e", 1.0)}):
        with pytest.raises(ValueError):
            VWPolicy(PolicyConfig(exploration="thompson"), **kwargs)  # type: ignore[arg-type]


def test_the_prior_is_worth_at_least_what_the_clusters_say_it_is() -> None:
    """Once the first cluster level has a strength, a model seldom seen near a task is not
    less certain there than the clusters say its quality elsewhere makes it."""
    post = ClusterPosterior(prior_strength=4.0, memory=1e9)
    cells = [("m",), ("K:a", "m")]
    assert post.estimate(0.5, cells, prior_precision=2.0)[1] == pytest.approx(
        1 / (1 / 2.0 + 1 / 4.0))
    post.strengths = {1: 30.0}
    # ... as far as the model's own outcomes in the clusters stand behind it
    assert post.estimate(0.5, cells, prior_precision=2.0)[1] == pytest.approx(
        1 / (1 / 2.0 + 1 / 30.0))  # tried only before the clusters existed: no floor
    post.clustered = {("m",): 6.0}
    assert post.estimate(0.5, cells, prior_precision=2.0)[1] == pytest.approx(
        1 / (1 / 6.0 + 1 / 30.0))
    post.clustered = {("m",): 100.0}
    assert post.estimate(0.5, cells, prior_precision=2.0)[1] == pytest.approx(15.0)
    assert post.estimate(0.5, cells, prior_precision=90.0)[1] == pytest.approx(
        1 / (1 / 90.0 + 1 / 30.0))
    assert post.estimate(0.5, cells[:1], prior_precision=2.0)[1] == 2.0  # no cluster: as is


def test_refit_counts_each_models_outcomes_in_the_first_level() -> None:
    post = ClusterPosterior(prior_strength=4.0, memory=1e9)
    for k in range(30):
        post.update([("m",), (f"K:{k % 3}", "m"), (f"K:f{k % 6}", "m")], 1.0)
    post.update([("n",)], 0.0)  # before the clusters existed
    post.refit()
    assert post.clustered == {("m",): pytest.approx(30.0)}


def test_the_normal_table_gives_each_key_its_own_distinct_rows() -> None:
    table = NormalTable(seed=3)
    rows = table.rows(2**40 + 17, draws=256, width=20)  # wider than the table: grows once
    assert rows.shape == (256, 20)
    assert len({tuple(r) for r in rows.round(12).tolist()}) == 256  # no row twice
    assert abs(float(rows.mean())) < 0.05 and abs(float(rows.std()) - 1) < 0.05
    assert not np.array_equal(rows, table.rows(2**40 + 18, draws=256, width=20))
    assert np.array_equal(NormalTable(seed=3).rows(5, draws=64, width=4),
                          NormalTable(seed=3).rows(5, draws=64, width=4))


def test_the_normal_table_is_the_same_whatever_was_asked_before() -> None:
    grown, direct = NormalTable(seed=1), NormalTable(seed=1)
    grown.rows(9, draws=32, width=20)
    assert np.array_equal(grown.rows(9, draws=32, width=40), direct.rows(9, draws=32, width=40))


def test_the_floor_tries_every_model_that_could_still_pay() -> None:
    """``thompson_floor``: a share, decaying with what was learned, for every model that
    could be the best with a perfect answer; none for one whose cost no answer repays."""
    def trained(floor: float) -> list[float]:
        policy = VWPolicy(PolicyConfig(exploration="thompson", thompson_floor=floor, seed=1,
                                       interactions=()), input_dim=8,
                          pinned={"A": {"cost": -1.0}}, learned_range=(0.0, 1.0))
        acts = [{"M": {"good": 1.0}, "A": {"cost": 0.0}},
                {"M": {"worse": 1.0}, "A": {"cost": 0.0}},
                {"M": {"dear": 1.0}, "A": {"cost": 0.5}}]
        ctx = {"T": {"x": 1.0}}
        for k in range(300):
            i = k % 3
            policy.learn(ctx, acts, i, reward=[0.8, 0.3, 1.0 - 0.5][i], probability=1 / 3)
        return policy.pmf(ctx, acts, draw=0.5)

    plain, floored = trained(0.0), trained(0.2)
    share = 0.2 / (1 + 300 / 100) ** 0.5 / 2  # two models could pay: good and worse
    assert plain[1] < 0.01 and floored[1] == pytest.approx(share, abs=0.01)
    assert floored[2] == 0.0 and plain[2] == 0.0  # 1.0 - 0.5 < 0.8: never worth a try
    assert sum(floored) == pytest.approx(1.0)


def test_a_model_owed_tries_in_a_cluster_gets_a_share_if_it_could_be_the_best() -> None:
    """``thompson_tries``: a model seen too seldom in the task's finest cluster (a specialist
    looks weak on average) gets a share there, unless no answer could repay its cost."""
    def trained(tries: int) -> tuple[list[float], list[float]]:
        policy = VWPolicy(PolicyConfig(exploration="thompson", thompson_tries=tries, seed=1,
                                       interactions=()), input_dim=8,
                          pinned={"A": {"cost": -1.0}}, learned_range=(0.0, 1.0),
                          baseline={"A": {"quality": 1.0, "cost": -1.0}}, groups=("K",),
                          evidence=("A", "evidence", 2.0))
        # the neighbours' estimates, each from many outcomes
        acts = [{"M": {"good": 1.0}, "A": {"cost": 0.0, "quality": 0.8, "evidence": 0.95}},
                {"M": {"worse": 1.0}, "A": {"cost": 0.0, "quality": 0.3, "evidence": 0.95}},
                {"M": {"dear": 1.0}, "A": {"cost": 0.5, "quality": 0.9, "evidence": 0.95}}]
        seen = {"T": {"x": 1.0}, "K": {"old": 1.0}}
        for k in range(300):  # every model tried in the old cluster
            i = k % 3
            policy.learn(seen, acts, i, reward=[0.8, 0.3, 0.5][i], probability=1 / 3)
        new = {"T": {"x": 1.0}, "K": {"new": 1.0}}
        return policy.pmf(seen, acts, draw=0.5), policy.pmf(new, acts, draw=0.5)

    (old0, new0), (old1, new1) = trained(0), trained(1)
    assert new0[1] < 0.01 and old1 == old0  # tried there already: nothing owed
    assert new1[1] >= 0.05 - 1e-9  # the weak model is owed a try in the new cluster
    assert new1[0] > 0.9
    assert new1[2] == 0.0  # 1.0 - 0.5 < 0.8: never worth a try
    assert sum(new1) == pytest.approx(1.0)

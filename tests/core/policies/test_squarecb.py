"""The adapter's own squareCB rule and the optimism counts behind its bonus."""

from __future__ import annotations

import math

import pytest

from bandit_router.core.policies._squarecb import Optimism, squarecb_pmf, toward_baseline


def test_squarecb_gives_every_other_action_one_over_k_plus_gamma_gap() -> None:
    costs = [0.3, -0.2, 0.1, -0.2]  # the first of the tied lowest costs is the best
    pmf = squarecb_pmf(costs, gamma=40.0)
    assert pmf[0] == pytest.approx(1 / (4 + 40 * 0.5))
    assert pmf[2] == pytest.approx(1 / (4 + 40 * 0.3))
    assert pmf[3] == pytest.approx(1 / 4)  # no gap: as likely as under uniform
    assert pmf[1] == pytest.approx(1 - pmf[0] - pmf[2] - pmf[3])
    assert squarecb_pmf(costs, gamma=0.0) == pytest.approx([0.25] * 4)
    assert squarecb_pmf([0.5], gamma=1e9) == [1.0]


def test_the_bonus_shrinks_with_each_identity_s_count() -> None:
    opt = Optimism(scale=0.2)
    assert opt.bonus([("a",), ("b",)]) == pytest.approx([0.2 * math.sqrt(math.log(2))] * 2)
    for _ in range(30):
        opt.record(("a",))
    opt.record(("b",))
    a, b, never = opt.bonus([("a",), ("b",), ("c",)])
    total = math.log(31 + 2)
    assert a == pytest.approx(0.2 * math.sqrt(total / 31))
    assert never == pytest.approx(0.2 * math.sqrt(total))
    assert never > b > a > 0


def test_the_counts_survive_their_json_state() -> None:
    opt = Optimism(scale=0.5)
    for identity in [("m1",), ("m1",), ("m2", "x")]:
        opt.record(identity)
    again = Optimism.from_state(opt.to_state(), scale=0.5)
    assert again.counts == {("m1",): 2, ("m2", "x"): 1}
    assert again.bonus([("m1",), ("m2", "x"), ("m3",)]) == opt.bonus(
        [("m1",), ("m2", "x"), ("m3",)])


@pytest.mark.parametrize("state", [None, 3, [["m", 1]], [[["m"], 1.5]], [[["m"], -1]],
                                   [[[1], 2]], [[["m"]]]])
def test_counts_that_are_not_whole_are_refused(state: object) -> None:
    with pytest.raises(ValueError):
        Optimism.from_state(state, scale=0.2)


def test_a_prediction_moves_from_its_baseline_to_the_regressor_s_as_rewards_come() -> None:
    """``strength`` pseudo-rewards of the baseline: a model never learned is predicted at its
    baseline, one learned ``n`` times at ``(n * regressor + strength * baseline) / (n +
    strength)``, and with no strength the regressor's prediction is left as it is."""
    costs, baselines, counts = [0.2, -0.1, 0.4], [-0.5, -0.5, 0.0], [0, 10, 1000]
    out = toward_baseline(costs, baselines, counts, strength=10.0)
    assert out[0] == -0.5
    assert out[1] == pytest.approx((10 * -0.1 + 10 * -0.5) / 20)
    assert out[2] == pytest.approx(1000 * 0.4 / 1010)
    assert toward_baseline(costs, baselines, counts, strength=0.0) == costs
    with pytest.raises(ValueError):
        toward_baseline(costs, baselines[:2], counts, strength=1.0)

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import Objective


def test_the_formula_on_numbers_and_arrays() -> None:
    o = Objective(cost_weight=20.0, latency_weight=0.5)
    assert o.reward(0.9, 0.01, 2.0) == pytest.approx(0.9 - 0.2 - 1.0)
    q, c = np.array([[0.9, 0.5]]), np.array([[0.01, 0.0]])
    assert np.allclose(o.reward(q, c), [[0.7, 0.5]])
    # no latency: the term is left out, not a zero latency (the same float to the last digit)
    assert o.reward(0.3, 0.1234) == 0.3 - 20.0 * 0.1234
    assert Objective().reward(0.25, 99.0) == 0.25


def test_a_routers_rewards_follow_the_objective(make_router) -> None:  # type: ignore[no-untyped-def]
    r = make_router()
    d = r.select("translate hello to French", cost_weight=30.0, latency_weight=0.2)
    receipt = r.reward(d.event_id, quality=0.8, cost_usd=0.003, latency_s=1.5)
    assert receipt.reward == Objective(30.0, 0.2).reward(0.8, 0.003, 1.5)

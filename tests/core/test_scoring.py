"""The per-request estimates (``core._scoring``): the task's difficulty moves every model's
prior alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit_router import ModelSpec
from bandit_router.core._memory import Recall
from bandit_router.core._scoring import difficulty, estimates


def _recall(counts: list[float], quality_sums: list[float]) -> Recall:
    zeros = np.zeros(len(counts))
    return Recall(count=np.asarray(counts, float), quality_sum=np.asarray(quality_sums, float),
                  reward_sum=zeros, cost_sum=zeros, tokens_sum=zeros, tokens_count=zeros,
                  similarity=1.0)


SPECS = [ModelSpec(provider="p", model=name, input_price_per_1m=1.0, output_price_per_1m=1.0,
                   quality_score=0.5) for name in ("strong", "untried")]
#: the strong model's overall mean 0.8 over 100 outcomes; the other was never tried
STATS = {"p/strong": {"n": 100.0, "quality": 0.8, "output_tokens": math.nan,
                      "latency_s": math.nan}}


def _quality(recall: Recall, *, task_difficulty: bool) -> list[float]:
    return [e.quality for e in estimates(SPECS, recall, input_tokens=10, stats=STATS,
                                         prior_strength=2.0, default_output_tokens=300,
                                         task_difficulty=task_difficulty)]


def test_difficulty_is_the_neighbours_outcomes_against_their_models_means() -> None:
    assert difficulty([4, 0], [3.0, 0.0], [0.75, 0.5], prior_strength=2.0) == 0.0  # usual
    hard = difficulty([10, 0], [2.0, 0.0], [0.8, 0.5], prior_strength=2.0)
    assert hard == pytest.approx((2.0 - 8.0) / 12.0)  # 6 successes short, over 10 + 2
    easy = difficulty([2, 2], [2.0, 2.0], [0.5, 0.5], prior_strength=2.0)
    assert easy == pytest.approx(2.0 / 6.0)
    assert difficulty([0, 0], [0.0, 0.0], [0.5, 0.5], prior_strength=2.0) == 0.0  # no one


def test_a_hard_task_lowers_an_untried_models_estimate_too() -> None:
    """The strong model (0.8 overall) failed on 6 of its 10 neighbours: the task is hard.
    Without the difficulty the untried model keeps its prior, 0.5, and looks better here
    than the strong one (0.47); with it, it is moved down by as much as the task's neighbours
    fell short of their model's mean."""
    hard = _recall([10, 0], [4.0, 0.0])
    plain = _quality(hard, task_difficulty=False)
    moved = _quality(hard, task_difficulty=True)
    assert plain[1] == pytest.approx(0.5) and plain[1] > plain[0]
    shift = difficulty([10, 0], [4.0, 0.0], [(0.8 * 100 + 2 * 0.5) / 102, 0.5],
                       prior_strength=2.0)
    assert shift < -0.3
    assert moved[1] == pytest.approx(0.5 + shift)
    assert moved[1] < moved[0] < plain[1]
    # the strong model's own neighbours weigh 10 to the prior's 2: it moves far less
    assert abs(moved[0] - plain[0]) < abs(moved[1] - plain[1]) / 4


def test_the_difficulty_keeps_estimates_within_zero_and_one() -> None:
    easy = _recall([50, 0], [50.0, 0.0])  # the strong model answered all 50 neighbours
    assert all(0.0 <= q <= 1.0 for q in _quality(easy, task_difficulty=True))
    assert _quality(easy, task_difficulty=True)[1] > _quality(easy, task_difficulty=False)[1]

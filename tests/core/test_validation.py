"""The checks behind ``Router.select`` and ``Router.reward`` (their HTTP mapping is tested in
tests/feedback_api)."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import Constraints, InvalidRewardError, InvalidTaskError, UnknownModelError
from bandit_router.core._validation import (
    check_id,
    check_input_tokens,
    check_names,
    check_reward,
    check_task,
)
from bandit_router.eval.simulation import demo_catalog


def test_numpy_numbers_are_taken_and_converted() -> None:
    assert check_reward(np.float32(0.5), np.float64(0.01), None, np.int64(7), None) == (
        0.5, pytest.approx(0.01), None, 7)
    assert check_input_tokens(np.int32(12)) == 12 and check_input_tokens(None) is None


@pytest.mark.parametrize("args", [
    (None, None, None, None, None), (1.5, None, None, None, None),
    (0.5, -1.0, None, None, None), (0.5, None, float("inf"), None, None),
    (0.5, None, None, True, None), (0.5, None, None, -1, None), (None, None, None, None, "x"),
])
def test_bad_rewards_are_refused(args: tuple) -> None:
    with pytest.raises(InvalidRewardError):
        check_reward(*args)


def test_tasks_ids_and_names() -> None:
    assert check_task("hi", max_chars=2) == "hi"
    for bad in ("", " ", "a\x00", "abc", 3):
        with pytest.raises(InvalidTaskError):
            check_task(bad, max_chars=2)
    assert check_id("user-1:a.b~c_d", "tenant") == "user-1:a.b~c_d"
    with pytest.raises(InvalidTaskError, match="tenant"):
        check_id("a/b", "tenant")
    catalog = demo_catalog()
    spec = next(iter(catalog))
    check_names(Constraints(allowed_models=frozenset({spec.key}),
                            excluded_models=frozenset({spec.model})), catalog)
    with pytest.raises(UnknownModelError, match="excluded_providers"):
        check_names(Constraints(excluded_providers=frozenset({"opneai"})), catalog)
    with pytest.raises(UnknownModelError, match="allowed_models"):
        check_names(Constraints(allowed_models=frozenset({"gpt-4o-typo"})), catalog)

"""The checks behind ``Router.select`` and ``Router.reward`` (their HTTP mapping is tested in
tests/feedback_api)."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import Constraints, InvalidRewardError, InvalidTaskError, UnknownModelError
from bandit_router.core._errors import InvalidInputError
from bandit_router.core._validation import (
    check_id,
    check_input_tokens,
    check_names,
    check_reward,
    check_task,
    check_time,
)
from bandit_router.eval.simulation import demo_catalog


def test_numpy_numbers_are_taken_and_converted() -> None:
    assert check_reward(np.float32(0.5), np.float64(0.01), None, np.int64(7), None) == (
        0.5, pytest.approx(0.01), None, 7)
    assert check_input_tokens(np.int32(12)) == 12 and check_input_tokens(None) is None


def test_a_time_is_unix_seconds_from_1970_to_9999() -> None:
    """One rule for every ``since``/``until``: routing stats, cost reports, their HTTP."""
    assert check_time("since", None) is None
    assert check_time("since", np.int64(1_800_000_000)) == 1.8e9
    assert type(check_time("since", 0)) is float
    for bad in (-1.0, 253_402_300_800.0, float("nan"), True, "1", float("inf")):
        with pytest.raises(InvalidInputError, match="since must be Unix seconds"):
            check_time("since", bad)


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

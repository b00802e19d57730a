"""Health alerts read from the log (bandit_router.health_alerts), with a fake clock."""

from __future__ import annotations

import pytest

from bandit_router import (
    InvalidInputError,
    PolicyConfig,
    Router,
    RouterConfig,
    fixed_model_alerts,
    health_alerts,
)
from bandit_router.eval.fixed import MIN_ANSWERS, fixed_models
from tests.conftest import FakeClock, MakeRouter
from tests.eval.test_fixed import TRUTH, truth_traffic


def _rewarded(router: Router, n: int, *, quality: float, error: str | None = None) -> None:
    for i in range(n):
        d = router.select(f"task {quality} {error} {i}")
        if error is None:
            router.reward(d.event_id, quality=quality)
        else:
            router.reward(d.event_id, error=error)


def test_a_quality_drop_against_the_trailing_week(make_router: MakeRouter,
                                                   clock: FakeClock) -> None:
    router = make_router(clock=clock, config=RouterConfig(reward_wait_s=10 * 86400))
    _rewarded(router, 60, quality=0.9)  # the week: 0.9
    clock.advance(2 * 86400)
    _rewarded(router, 19, quality=0.5)  # the last hour: under 20 rewards, too few to say
    assert health_alerts(router, now=clock()) == []
    _rewarded(router, 1, quality=0.5)
    (alert,) = health_alerts(router, now=clock())
    assert alert.kind == "quality_drop" and alert.rewards == 20
    assert alert.value == pytest.approx(0.5)
    assert alert.threshold == pytest.approx(0.9 * (60 * 0.9 + 20 * 0.5) / 80)
    clock.advance(2 * 3600)  # an hour later the bad hour is past
    assert health_alerts(router, now=clock()) == []
    clock.advance(8 * 86400)  # and a week later there is nothing to compare
    assert health_alerts(router, now=clock()) == []


def test_failed_calls_and_learning_lag(make_router: MakeRouter, clock: FakeClock) -> None:
    router = make_router(clock=clock)
    _rewarded(router, 27, quality=0.8)
    _rewarded(router, 3, quality=0.0, error="server_error")  # 10%: not above it
    assert [a.kind for a in health_alerts(router, now=clock())] == []
    _rewarded(router, 1, quality=0.0, error="timeout")
    kinds = [a.kind for a in health_alerts(router, now=clock(), learning_lag=1001)]
    assert kinds == ["error_rate", "learning_lag"]
    clock.advance(601)  # the failures are older than the 10 minutes looked at
    assert health_alerts(router, now=clock(), learning_lag=1000) == []
    with pytest.raises(InvalidInputError):
        health_alerts(router, error_rate=1.5)


def test_a_fixed_model_that_beats_the_router_over_the_day(make_router: MakeRouter,
                                                          clock: FakeClock) -> None:
    """A router exploring three times in four against one clearly better model: the alert
    names it, its difference above the bar; a day later the traffic is out of the window."""
    router = make_router(clock=clock, policy=PolicyConfig(exploration="epsilon", epsilon=0.75,
                                                          seed=0))
    truth_traffic(router, 1500)
    report = fixed_models(router)
    (alert,) = fixed_model_alerts(router, now=clock())
    best = report.row("openlang/polyglot")
    assert alert.kind == "fixed_model" and alert.model == "openlang/polyglot"
    assert alert.value == pytest.approx(best.difference.value)
    assert 0 < alert.threshold < alert.value and alert.rewards == best.events == 1500
    assert "openlang/polyglot" in alert.message and alert.to_dict()["model"] == alert.model
    # the bar counts every model judged (all five): a one-sided test at 1% each
    judged = sum(r.chosen >= MIN_ANSWERS for r in report.rows)
    se = (best.difference.high - best.difference.value) / 1.96
    assert judged == 5 and alert.threshold == pytest.approx(2.3263 * se, rel=1e-4)
    assert fixed_model_alerts(router, now=clock() + 86400 + 2) == []  # out of the day
    assert len(fixed_model_alerts(router, now=clock() + 86400 + 2, window_s=3 * 86400)) == 1
    assert len(fixed_model_alerts(router, now=clock(), window_s=1e12)) == 1  # all of it
    assert fixed_model_alerts(router, now=clock(), arm="elsewhere") == []  # one arm


def test_no_fixed_model_alert_where_every_model_is_as_good(make_router: MakeRouter,
                                                           clock: FakeClock) -> None:
    router = make_router(clock=clock, policy=PolicyConfig(exploration="epsilon", epsilon=0.75,
                                                          seed=1))
    truth_traffic(router, 1500, seed=1, truth=dict.fromkeys(TRUTH, 0.5))
    report = fixed_models(router)
    assert sum(r.chosen >= MIN_ANSWERS for r in report.rows) == len(TRUTH)  # all judged
    assert fixed_model_alerts(router, now=clock()) == []
    with pytest.raises(InvalidInputError):
        fixed_model_alerts(router, window_s=0)
    with pytest.raises(InvalidInputError):
        fixed_model_alerts(router, family_error=1.0)

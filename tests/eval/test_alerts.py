"""Health alerts read from the log (bandit_router.health_alerts), with a fake clock."""

from __future__ import annotations

import pytest

from bandit_router import InvalidInputError, Router, RouterConfig, health_alerts
from tests.conftest import FakeClock, MakeRouter


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

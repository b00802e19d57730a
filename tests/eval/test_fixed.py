"""The router against every fixed model, from its own log (bandit_router.eval.fixed)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from bandit_router import InvalidInputError, Objective, PolicyConfig, Router, RouterConfig
from bandit_router.eval.fixed import MIN_ANSWERS, fixed_models
from tests.conftest import FakeClock

#: each demo model's quality (a request's outcome is a coin with this chance)
TRUTH = {"openlang/polyglot": 0.9, "frontier/large": 0.6, "midtier/generalist": 0.5,
         "opencode/coder": 0.3, "budget/tiny": 0.2}
COST = 0.0001  # every call's reported cost: the reward is quality - weight x cost


def truth_traffic(router: Router, n: int, *, seed: int = 0, start: int = 0,
                  truth: Mapping[str, float] = TRUTH) -> list[float]:
    """``n`` requests with outcomes drawn from ``truth`` (each model's chance of a good
    answer; :data:`TRUTH` unless given); the rewards as learned."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        d = router.select(f"Translate sentence {i} to French", event_id=f"e{i}")
        quality = float(rng.random() < truth[f"{d.provider}/{d.model}"])
        router.reward(d.event_id, quality=quality, cost_usd=COST)
        out.append(Objective(router.config.cost_weight).reward(quality, COST))
    return out


@pytest.fixture
def exploring(make_router: Callable[..., Router]) -> tuple[Router, list[float]]:
    """A router that explores three times in four (epsilon-greedy: every model has a 15%
    chance or more on every request), after 1,500 requests."""
    router = make_router(policy=PolicyConfig(exploration="epsilon", epsilon=0.75, seed=0),
                         config=RouterConfig(cost_weight=10.0))
    return router, truth_traffic(router, 1500)


def test_the_router_and_each_fixed_model_against_the_truth(
        exploring: tuple[Router, list[float]]) -> None:
    router, rewards = exploring
    report = fixed_models(router, level=0.99)  # (five intervals each covering the truth)
    assert report.events == len(rewards) == 1500
    assert report.router.value == pytest.approx(np.mean(rewards))
    assert report.router.n == 1500 and report.router.low < report.router.value
    for row in report.rows:
        # every model had a chance on every request, and the estimate covers its truth
        assert row.support == 1.0 and row.events == 1500 and row.chosen >= MIN_ANSWERS
        truth = TRUTH[row.model] - 10.0 * COST
        assert row.value.low < truth < row.value.high, row
        assert row.router == pytest.approx(report.router.value)
        assert row.difference.value == pytest.approx(row.value.value - row.router)
    # most of the traffic explores: always the best model beats the router, the weak lose
    best, worst = report.row("openlang/polyglot"), report.row("budget/tiny")
    assert best.verdict == "better" and best.difference.low > 0
    assert worst.verdict == "worse" and worst.difference.high < 0
    assert report.rows[0] is best  # the furthest above the router first
    assert sum(r.chosen for r in report.rows) == 1500
    # plain JSON, and the table names every model with its verdict
    data = json.loads(report.to_json())
    assert data["events"] == 1500 and len(data["rows"]) == len(TRUTH)
    assert data["rows"][0]["verdict"] == "better"
    table = report.to_table()
    assert all(model in table for model in TRUTH) and "better" in table
    with pytest.raises(KeyError):
        report.row("nobody/none")


def test_only_the_requests_where_a_model_had_a_fair_chance_count(
        make_router: Callable[..., Router]) -> None:
    """Thompson sampling gives most models little chance on most requests: each is judged
    on those where it had a 10% chance or more, and a model with few answers there gets no
    verdict however narrow its interval."""
    router = make_router()
    rewards = truth_traffic(router, 400, seed=1)
    report = fixed_models(router)
    assert report.events == 400 and report.router.value == pytest.approx(np.mean(rewards))
    for row in report.rows:
        assert 0.0 <= row.support <= 1.0 and row.events <= 400
        if row.chosen < MIN_ANSWERS:
            assert row.verdict == "no evidence"
    assert any(r.support < 0.5 and r.events < 200 for r in report.rows)
    # an answer given at under a 10% chance counts for no model (its weight would be > 10)
    assert sum(r.chosen for r in report.rows) < 400
    assert any(r.chosen < MIN_ANSWERS for r in report.rows)
    enough = [r for r in report.rows if r.chosen >= MIN_ANSWERS]
    assert report.rows[:len(enough)] == tuple(enough)  # those with a verdict come first


def test_history_default_rewards_and_the_period(make_router: Callable[..., Router],
                                                clock: FakeClock) -> None:
    from bandit_router.eval.datasets import synthetic_dataset

    router = make_router(clock=clock, config=RouterConfig(cost_weight=10.0,
                                                          reward_wait_s=60.0))
    router.warm_start(synthetic_dataset(30, seed=2))  # history: not traffic
    first = truth_traffic(router, 50)
    clock.advance(3600)
    middle = clock()
    second = truth_traffic(router, 50, start=50)
    router.select("never rewarded", event_id="late")
    clock.advance(120)
    router.process_expired()  # learned with the default reward: says nothing of the model
    report = fixed_models(router)
    assert report.events == 100
    assert report.router.value == pytest.approx(np.mean(first + second))
    later = fixed_models(router, since=middle)
    assert later.events == 50 and later.router.value == pytest.approx(np.mean(second))
    assert fixed_models(router.store, until=middle).events == 50
    empty = fixed_models(router, since=clock() + 10)
    assert empty.events == 0 and empty.rows == () and math.isnan(empty.router.value)
    assert json.loads(empty.to_json())["router"]["value"] is None  # null, not NaN


def test_arms_and_requests_without_their_distribution(
        make_router: Callable[..., Router]) -> None:
    """Each experiment arm is its own router (a Router's own arm by default); a request
    logged without the whole distribution counts for the router's mean only."""
    from sqlalchemy import update

    from bandit_router.core._store import EventRow

    main = make_router(config=RouterConfig(cost_weight=10.0))
    other = make_router(arm="treatment", config=RouterConfig(cost_weight=10.0))
    mine = truth_traffic(main, 120)
    theirs = truth_traffic(other, 60, start=1000)
    assert fixed_models(main).events == 120
    assert fixed_models(main).router.value == pytest.approx(np.mean(mine))
    assert fixed_models(other).router.value == pytest.approx(np.mean(theirs))
    assert fixed_models(main.store).events == 180  # a store: every arm
    assert fixed_models(main.store, arm="treatment").events == 60
    with main.store.engine.begin() as conn:
        conn.execute(update(EventRow).where(EventRow.arm == "").values(pmf=[]))
    blind = fixed_models(main)
    assert blind.events == 120 and blind.router.value == pytest.approx(np.mean(mine))
    assert all(r.events == 0 and r.support == 0.0 and r.verdict == "no evidence"
               for r in blind.rows)
    json.loads(blind.to_json())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"level": 0.5}, "level must be one of"),
    ({"since": 10.0, "until": 5.0}, "the period is empty"),
    ({"since": float("nan")}, "since")])
def test_bad_arguments(make_router: Callable[..., Router], kwargs: dict[str, float],
                       message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        fixed_models(make_router(), **kwargs)
    with pytest.raises(InvalidInputError, match="a Router or a Store"):
        fixed_models("sqlite://")  # type: ignore[arg-type]

"""The clients' experiment methods, against the real uvicorn server (real MiniLM, VW,
SQLite): create, list, route, read live statistics, promote, stop; typed errors."""

from __future__ import annotations

import asyncio
import math

import pytest

from bandit_router import (
    InvalidInputError,
    InvalidTaskError,
    PermissionDeniedError,
    UnknownModelError,
)
from bandit_router.client import AsyncRouterClient, RouterClient
from bandit_router.eval.experiments import ArmStats, Comparison, ExperimentReport
from bandit_router.eval.offpolicy import Estimate
from bandit_router.eval.simulation import SyntheticWorkload

from .conftest import Server

pytestmark = pytest.mark.slow


def test_experiments_through_the_client(server: Server) -> None:
    admin = RouterClient(server.url, server.admin_key)
    app = RouterClient(server.url, server.client_key)
    name = "client-experiment"  # fixed: the assignment of units to arms is deterministic
    created = admin.create_experiment(
        name, {"learning": {"cost_weight": 50.0},
               "gpt-4o": {"fixed_model": "openai/gpt-4o"},
               "small": {"models": ("gpt-4o-mini", "gpt-4.1-nano"), "exploration": "epsilon",
                         "epsilon": 0.5}},
        shares={"learning": 2.0, "gpt-4o": 1.0, "small": 1.0})
    assert isinstance(created, ExperimentReport)
    assert (created.name, created.status, created.control, created.promoted) == (
        name, "running", "learning", None)
    assert created.arms["learning"].share == pytest.approx(0.5)
    fixed = created.arms["gpt-4o"]
    assert isinstance(fixed, ArmStats) and fixed.fixed_model == "openai/gpt-4o"
    assert fixed.requests == 0 and math.isnan(fixed.quality.value) and fixed.latency_s is None
    assert created.arms["small"].models == ("openai/gpt-4o-mini", "openai/gpt-4.1-nano")
    assert created.comparisons == ()
    assert name in admin.list_experiments()

    wl = SyntheticWorkload(seed=21)
    for i in range(40):
        task = wl.sample_task()
        d = app.select(task.text, experiment=name, unit_key=f"user-{i % 20}")
        app.reward(d.event_id, quality=0.9 if d.model == "gpt-4o" else 0.6,
                   cost_usd=d.estimated_cost_usd, latency_s=1.5)
    report = admin.get_experiment(name)
    assert sum(a.requests for a in report.arms.values()) == 40
    assert all(a.requests >= 2 for a in report.arms.values())
    fixed = report.arms["gpt-4o"]
    # quality 0.9 was given to gpt-4o's answers only: every fixed-arm decision was gpt-4o
    assert isinstance(fixed.quality, Estimate) and fixed.quality.value == pytest.approx(0.9)
    assert fixed.quality.low == pytest.approx(0.9)  # no variance at all
    assert fixed.latency_s is not None and fixed.latency_s.value == pytest.approx(1.5)
    assert report.arms["small"].quality.value == pytest.approx(0.6)
    assert [(c.a, c.b) for c in report.comparisons] == [("learning", "gpt-4o"),
                                                        ("learning", "small")]
    assert all(isinstance(c, Comparison) and c.metric == "reward" for c in report.comparisons)

    promoted = admin.promote_experiment(name, "gpt-4o")
    assert (promoted.status, promoted.promoted) == ("promoted", "gpt-4o")
    for i in range(5):  # every unit now gets the fixed arm: gpt-4o, with probability 1
        d = app.select(f"Write a Rust function that caches results, take {i}.",
                       experiment=name, unit_key=f"new-user-{i}")
        assert (d.provider, d.model, d.probability, d.alternatives) == (
            "openai", "gpt-4o", 1.0, ())
    stopped = admin.stop_experiment(name)
    assert (stopped.status, stopped.promoted) == ("stopped", "learning")
    assert admin.get_experiment(name).status == "stopped"

    # typed errors
    with pytest.raises(PermissionDeniedError):
        app.create_experiment(f"{name}-x", {"a": {}, "b": {}})
    with pytest.raises(UnknownModelError, match="gpt-5"):
        admin.create_experiment(f"{name}-x", {"a": {}, "b": {"fixed_model": "gpt-5"}})
    with pytest.raises(UnknownModelError, match="nope"):
        admin.create_experiment(f"{name}-x", {"a": {}, "b": {"models": ["gpt-4o", "nope"]}})
    with pytest.raises(InvalidInputError, match="not both"):
        admin.create_experiment(f"{name}-x", {"a": {}, "b": {"models": ["gpt-4o"],
                                                             "fixed_model": "gpt-4o"}})
    with pytest.raises(InvalidInputError, match="already exists"):
        admin.create_experiment(name, {"a": {}, "b": {}})
    with pytest.raises(UnknownModelError, match="no experiment"):
        admin.get_experiment("no-such-experiment")
    with pytest.raises(InvalidInputError, match="no arm"):
        admin.promote_experiment(name, "zzz")
    with pytest.raises(UnknownModelError):
        app.select("hi", experiment="no-such-experiment", unit_key="u")
    with pytest.raises(InvalidTaskError, match="unit_key"):
        app.select("hi", experiment=name)
    assert f"{name}-x" not in admin.list_experiments()


def test_experiments_through_the_async_client(server: Server) -> None:
    name = "async-client-experiment"

    async def go() -> tuple[ExperimentReport, ExperimentReport, list[str], list[str]]:
        async with AsyncRouterClient(server.url, server.admin_key) as admin, \
                AsyncRouterClient(server.url, server.client_key) as app:
            await admin.create_experiment(name, {
                "learning": {}, "nano": {"fixed_model": "gpt-4.1-nano"}})
            models = []
            for i in range(12):
                d = await app.select(f"How do you say 'thank you' in Dutch? ({i})",
                                     experiment=name, unit_key=f"u{i}")
                models.append(f"{d.model}@{d.probability}")
                await app.reward(d.event_id, quality=0.8, cost_usd=d.estimated_cost_usd)
            report = await admin.get_experiment(name)
            stopped = await admin.stop_experiment(name)
            with pytest.raises(UnknownModelError):
                await admin.get_experiment("no-such-experiment")
            with pytest.raises(PermissionDeniedError):
                await app.list_experiments()
            return report, stopped, models, await admin.list_experiments()

    report, stopped, models, names = asyncio.run(go())
    assert report.arms["nano"].fixed_model == "openai/gpt-4.1-nano"
    assert report.arms["nano"].requests + report.arms["learning"].requests == 12
    assert report.arms["nano"].requests > 0 and "gpt-4.1-nano@1.0" in models
    assert stopped.status == "stopped" and name in names

"""benchmarks/bench_safety_net.py: the rule that reads a router's log as issue #15's fixed-model
safety net would, and one replay read through it end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bandit_router.eval.datasets import synthetic_dataset
from bandit_router.eval.protocol import Workload
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT / "benchmarks"))  # (its sibling module _results)
        return load_script("benchmarks/bench_safety_net.py")


def _random_router(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    chosen = np.random.default_rng(seed).integers(2, size=n)
    return chosen, np.full(n, 0.5)


def test_a_model_better_than_the_router_is_found_once_the_evidence_is_in(
        bench: ModuleType) -> None:
    chosen, p = _random_router(3000)
    rng = np.random.default_rng(1)
    # model 1 answers 0.7 of the time, model 0 0.5: the router (half each) earns 0.6
    reward = (rng.random(3000) < np.where(chosen == 1, 0.7, 0.5)).astype(float)
    hit = bench.first_evidence(reward, chosen, p, 2, window=3000, burn=10, level=0.99)
    assert hit is not None and hit[1] == 1
    assert 10 < hit[0] < 3000  # not at once: 0/1 outcomes need a few hundred rounds
    # a stricter level waits at least as long
    later = bench.first_evidence(reward, chosen, p, 2, window=3000, burn=10, level=0.95)
    assert later is not None and later[0] <= hit[0]


def test_no_switch_when_the_router_already_earns_the_most(bench: ModuleType) -> None:
    rng = np.random.default_rng(2)
    n = 5000
    kind = rng.integers(2, size=n)  # model 0 is best on one kind of task, model 1 on the other
    right = rng.random(n) < 0.9     # and the router picks the right one 90% of the time
    chosen = np.where(right, kind, 1 - kind)
    p = np.where(right, 0.9, 0.1)
    reward = (rng.random(n) < np.where(chosen == kind, 0.8, 0.3)).astype(float)
    assert bench.first_evidence(reward, chosen, p, 2, window=1000, burn=100,
                                level=0.99) is None


def test_evidence_older_than_the_window_does_not_count(bench: ModuleType) -> None:
    chosen, p = _random_router(4000, seed=3)
    # model 1 is much better for the first 1,000 rounds, then both are equal
    reward = np.where((chosen == 1) & (np.arange(4000) < 1000), 1.0, 0.5)
    assert bench.first_evidence(reward, chosen, p, 2, window=4000, burn=100,
                                level=0.99) == (100, 1)
    assert bench.first_evidence(reward, chosen, p, 2, window=500, burn=1500,
                                level=0.99) is None


def test_the_decision_at_a_round_reads_only_the_rounds_before_it(bench: ModuleType) -> None:
    chosen, p = _random_router(3000, seed=4)
    # model 1 is no better than model 0 until round 2,000, then far better
    reward = np.where((chosen == 1) & (np.arange(3000) >= 2000), 1.0, 0.5)
    hit = bench.first_evidence(reward, chosen, p, 2, window=300, burn=10, level=0.99)
    assert hit is not None and hit[1] == 1
    assert 2000 < hit[0] < 2300  # after the change, once enough of it is in the window
    t = hit[0]

    def cut(n: int) -> tuple[int, int] | None:
        return bench.first_evidence(reward[:n], chosen[:n], p[:n], 2, window=300, burn=10,
                                    level=0.99)
    assert cut(t + 1) == hit  # what comes after round t does not decide it
    assert cut(t) is None  # nor is a switch decided at the last round (it would serve none)


@pytest.mark.slow
def test_a_replay_read_as_the_net_would(bench: ModuleType) -> None:
    ds = replace(synthetic_dataset(400, seed=7), name="tiny")
    workload = Workload(name="tiny", description="", load=lambda: ds, cost_weights=(20,))
    bench._LOADED["tiny"] = (workload, ds)
    try:
        opts = {"levels": [0.95], "window": 100, "burn": 50, "eps": 0.1}
        run = bench.one_run(("tiny", 20.0, 0, opts))
    finally:
        bench._LOADED.clear()
    assert run["rounds"] == 400 and run["hindsight_model"] in ds.models
    net = run["nets"]["0.95"]
    if net["switched_at"] is None:  # then the net is the router, to the digit
        assert net["vs_hull"] == run["router"]["vs_hull"]
    else:
        assert 50 <= net["switched_at"] <= 400 and net["model"] in ds.models
    # the ceiling serves a fixed model (a point under or on the hull) 90% of the time
    assert run["ceiling"]["vs_hull"] <= 0.1 * max(run["router"]["vs_hull"], 0.0) + 1e-9
    (row,) = bench.summarise([run], [0.95])
    assert row["seeds"] == 1 and row["net_0.95"]["switched"] == int(
        net["switched_at"] is not None)

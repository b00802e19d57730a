"""The memory and start-up benchmarks run end to end at a small size (their figures are for
benchmarks, not tests: what is checked here is that they still run and measure the path
they say, e.g. that a restart filed sealed pages rather than rebuilding from the log)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bandit_router.eval.datasets import default_data_dir

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _bench(script: str, out: Path, *args: str) -> Any:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--out", str(out)],
                   check=True, capture_output=True, cwd=ROOT, timeout=600)
    return json.loads(out.read_text())


def test_startup_restores_a_compact_memory_from_its_pages_and_the_log(tmp_path: Path) -> None:
    """70,000 tasks: a compact memory, one sealed page of 65,536 rows, the rest in the log."""
    result = _bench("bench_startup.py", tmp_path / "startup.json", "--tasks", "70000",
                    "--starts", "1", "--selects", "40")
    build = result["build"]
    assert (build["pages"], build["paged_rows"]) == (1, 65_536)
    (start,) = result["starts"]
    assert start["restored"] and start["remembered"] == 70_000
    # then the decisions timed at that history, the embedding given, four budgets
    (size,) = result["sizes"]
    assert size["tasks"] == 70_000 and 0 < size["select_given_ms"]["p50"] <= size[
        "select_given_ms"]["p99"]


def test_memory_fills_searches_and_reloads_a_compact_memory(tmp_path: Path) -> None:
    result = _bench("bench_memory.py", tmp_path / "memory.json", "--tasks", "70000")
    assert result["tasks"] == 70_000 and result["lists"] == 512
    # (question-shaped tasks have neighbours to find; without the data, random unit vectors
    # in 384 dimensions have hardly any, and 8 lists of 512 find few of them)
    floor = 0.9 if result["vectors"] == "mmlu_pro+noise" else 0.0
    assert floor < result["exact_found"] <= 1.0
    assert result["reload_s"] > 0


@pytest.mark.skipif(not (default_data_dir() / "mmlu_pro" / "prompts.jsonl.gz").exists(),
                    reason="shared MMLU-Pro data not present (BANDIT_ROUTER_DATA)")
def test_replay_speed_times_the_replayed_rounds_cold_and_warm(tmp_path: Path) -> None:
    result = _bench("bench_replay_speed.py", tmp_path / "replay_speed.json", "--tasks", "300",
                    "--seeds", "0", "--jobs", "1")
    cold, warm = sorted(result["runs"], key=lambda run: run["mode"])
    assert (cold["mode"], cold["rounds"], cold["warm_tasks"]) == ("cold", 300, 0)
    assert (warm["mode"], warm["rounds"], warm["warm_tasks"]) == ("warm", 240, 60)
    assert warm["other_s"] > cold["other_s"]  # the warm start is outside the rounds' time
    assert result["summary"]["warm"]["median"] == warm["rounds_per_s"] > 0


def test_fixed_models_sets_each_estimate_beside_the_truth(tmp_path: Path) -> None:
    """The synthetic workload (no data needed), one seed: every estimate with enough answers
    is set beside always-that-model's true reward on the same requests."""
    result = _bench("bench_fixed_models.py", tmp_path / "fixed.json", "--workloads",
                    "synthetic", "--seeds", "0")
    rows, summary = result["rows"], result["summary"]
    assert rows and summary["estimates"] == len(rows)
    assert summary["covered"] == sum(r["covered"] for r in rows)
    for r in rows:
        assert r["workload"] == "synthetic" and r["answers"] >= result["min_answers"]
        assert r["covered"] == (r["low"] <= r["truth"] <= r["high"])
        assert -1.0 <= r["truth"] <= 1.0 and r["events"] >= r["answers"]
    assert summary["verdicts_agreeing"] <= summary["verdicts"]

"""docs/benchmarks.md: its tables are what the benchmarks' JSON files say
(scripts/bench_doc.py renders them), never figures typed by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def doc() -> ModuleType:
    return load_script("scripts/bench_doc.py")


def _machine(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"cpu_count": 2, "platform": "Linux-6.1-x86_64", "python": "3.11.7",
            "date_utc": "2027-01-04 12:00", "command": command, "args": args}


def _p(p50: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p99": p99, "mean": (p50 + p99) / 2}


def _results(doc: ModuleType) -> dict[str, dict[str, Any]]:
    """One handmade result per table, as the benchmarks write them at full size."""
    full = doc.FULL_SIZE

    def recall(n: int, index: str, p50: float) -> dict[str, Any]:
        return {"tasks": n, "index": index, "queries": 300, "neighbours": 32,
                "recall_ms": _p(p50, 2 * p50), "rss_mb": 12.0, "checkpoint_mb": 0.7,
                "checkpoint_s": 0.004}

    budget_row = {"share": 0.25, "tasks": 10_225, "spent_share": 0.984, "budget": 10.0,
                  "spent": 9.84, "quality": 0.6961, "refused": 0.0, "best_fixed_mix": 0.72,
                  "always_cheapest": 0.309, "always_gpt4o": 0.731, "cost_weight_p50": 0.4,
                  "rounds_per_s": 450.0}
    results: dict[str, dict[str, Any]] = {
        "router": {
            "machine": _machine("benchmarks/bench_router.py", full["router"]),
            "database": "sqlite", "models": 15, "calls": 1000, "embedder": "minilm",
            "embedder_load_s": 2.0,
            "rss_mb": {"start": 90.0, "loaded": 497.2, "end": 720.4},
            "select_ms": _p(14.2, 22.7), "select_no_embedding_ms": _p(0.96, 3.4),
            "select_four_budgets_ms": _p(1.85, 4.1),
            "reward": {"calls": 2000, "per_s": 833.3, "ms_each": 1.2},
            "sqlite_commit_ms": _p(0.5, 3.5),
            "reward_concurrent": {"calls": 1000, "threads": 8, "per_s": 3125.0,
                                  "commits": 250, "writes_per_commit": 4.0},
            "decisions": 3050, "rewarded": 2000, "remembered_tasks": 2000,
            "recall": [recall(10_000, "exact", 0.89), recall(10_000, "IVF", 0.07),
                       recall(50_000, "exact", 7.8), recall(50_000, "IVF", 0.21)],
            "ivf_on_real_tasks": {"dataset": "mmlu_pro", "remembered": 10_000,
                                  "queries": 200, "neighbours": 32, "exact_found": 0.955}},
        "http": {
            "machine": _machine("benchmarks/bench_http.py", full["http"]), "pairs": 1000,
            "runs": [{"users": u, "pairs": 1000, "pairs_per_s": s, "select_ms": _p(a, b),
                      "reward_ms": _p(c, d)}
                     for u, s, a, b, c, d in ((1, 29.8, 24.5, 41.8, 7.5, 13.4),
                                              (4, 40.1, 73.6, 139.8, 22.5, 47.8))]},
        "budget_mmlu": {
            "machine": _machine("benchmarks/bench_budget_mmlu.py --seeds 0 1 2",
                                full["budget_mmlu"]),
            "seeds": [0, 1, 2], "rows": [{**budget_row, "per_seed": [budget_row]}]},
        "checkpoint": {
            "machine": _machine("benchmarks/bench_checkpoint.py", full["checkpoint"]),
            "dataset": "mmlu_pro", "models": 13,
            "rows": [{"tasks": 10_000, "checkpoint_mb": 0.77, "write_ms": 11.8,
                      "with_vectors_mb": 16.1, "with_vectors_write_ms": 106.0,
                      "restart_s": 0.16}]},
        "policy": {
            "machine": _machine("benchmarks/bench_policy.py",
                                {**full["policy"], "optimism": 0.2, "gamma_scale": 400.0,
                                 "baseline_strength": 10.0}),
            "actions": 13, "rounds": 3000, "repeats": 3, "exploration": "squarecb",
            "rows": [{"dims": 32, "decide_us": 151.0, "learn_us": 88.0, "per_run": []}]},
        "embedder": {
            "machine": _machine("benchmarks/bench_embedder.py", {**full["embedder"],
                                                                 "threads": None}),
            "runs": [{"kind": kind, "name": "all-MiniLM-L6-v2", "load_s": load,
                      "export_s": export, "rss_mb": {"start": 90, "loaded": rss, "end": rss},
                      "single_ms": _p(p50, 2 * p50), "batch64_per_s": 180.0,
                      "cosine_short": {"min": cos, "p1": cos, "mean": cos},
                      "cosine_mmlu_pro": None}
                     for kind, load, export, rss, p50, cos in (
                         ("minilm-torch", 7.1, None, 618.0, 16.9, 1.0),
                         ("minilm", 0.49, 10.7, 248.0, 8.37, 0.99999),
                         ("minilm-int8", 0.52, 11.9, 170.0, 5.02, 0.9941))]},
        "peers": {
            "machine": _machine("benchmarks/bench_peers.py", {**full["peers"],
                                                              "peers": ["river_linucb"]}),
            "runs": [], "summary": [
                {"name": "river_linucb", "seeds": [0, 1, 2], "regret_mean": 371.3,
                 "regret_worst": 402.0, "frac_opt_last5k": 0.7862, "rounds_per_s": 576.0},
                {"name": "bandit-router (Router defaults, replay)", "seeds": [0, 1, 2],
                 "regret_mean": 589.0, "regret_worst": 640.0, "frac_opt_last5k": 0.7254,
                 "rounds_per_s": 400.5}]},
        "startup": {
            "machine": _machine("benchmarks/bench_startup.py", full["startup"]),
            "tasks": 1_000_000, "ready_s": 6.2, "router_s": 5.1,
            "build": {"write_log_s": 150.0, "fill_memory_s": 158.0, "checkpoint_s": 0.5,
                      "database_mb": 8200.0},
            "starts": [{"ready_s": 6.2, "interpreter_s": 0.05, "import_s": 0.5,
                        "router_s": 5.1, "first_select_s": 0.02, "peak_rss_mb": 2600.0,
                        "remembered": 1_000_000,
                        "learned": 1_000_050, "restored": True}] * 3},
        "locust": {
            "machine": _machine("benchmarks/bench_locust.py", full["locust"]),
            "runs": [{"users": 16, "seconds": 60, "pairs_per_s": 31.5, "failures": 0,
                      "select": {"requests": 1890, "failures": 0, "per_s": 31.5,
                                 "ms": _p(310.0, 900.0)},
                      "reward": {"requests": 1889, "failures": 0, "per_s": 31.5,
                                 "ms": _p(120.0, 700.0)}}]},
    }
    router = results["router"]  # the same benchmark on PostgreSQL, without the memory part
    results["router_postgresql"] = {
        **{k: v for k, v in router.items() if k != "sqlite_commit_ms"},
        "machine": _machine(doc.COMMANDS["router_postgresql"], full["router_postgresql"]),
        "database": "postgresql", "recall": [],
        "reward_concurrent": {**router["reward_concurrent"], "per_s": 1400.0},
        "ivf_on_real_tasks": {"skipped": "--memory-sizes empty"}}
    return results


def _write(folder: Path, results: dict[str, dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (folder / f"{name}.json").write_text(json.dumps(result))
    return folder


def _row(block: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in block.splitlines() if line.startswith("|")]
    found = [r for r in rows if r[0] == first]
    assert len(found) == 1, (first, block)
    return found[0]


def test_the_doc_is_what_the_results_in_the_repo_render(doc: ModuleType) -> None:
    text = doc.DOC.read_text()
    assert doc.render(text) == text, "run: python scripts/bench_doc.py --write"
    assert doc.not_full_size() == [], "commit only full-size runs' results"
    assert doc.main(["--check"]) == 0


def test_figures_land_in_their_cells(doc: ModuleType, tmp_path: Path) -> None:
    results = _write(tmp_path, _results(doc))
    router = doc.render_block("router", results)
    assert _row(router, "`select()`, real MiniLM embedding (`minilm`) of a new short "
                "prompt")[
        1] == "p50 14.2 ms, p99 22.7 ms"
    assert _row(router, "resident memory: MiniLM + VW + FAISS loaded / after 2,000 rewards")[
        1] == "497 MB / 720 MB"
    assert _row(router, "50,000")[1:3] == ["7.8 / 15.6 ms", "0.21 / 0.42 ms"]
    assert _row(router, "a bare SQLite commit on the same disk (WAL, `synchronous=FULL`): the "
                "floor under a caller's durable acknowledgement, one caller at a time")[1] == (
        "p50 0.5 ms, p99 3.5 ms (500/s one after another)")
    assert _row(router, "`reward(learn=False)` from 8 threads at once (writes that arrive "
                "during a commit share the next one)")[1] == (
        "3,125 rewards/s acknowledged, 4.0 rewards a commit")
    postgres = doc.render_block("router_postgresql", results)
    assert postgres.startswith("15 models, a postgresql database")
    assert _row(postgres, "`reward(learn=False)` from 8 threads at once (writes that arrive "
                "during a commit share the next one)")[1] == (
        "1,400 rewards/s acknowledged, 4.0 rewards a commit")
    assert "SQLite commit" not in postgres and "Recall of the" not in postgres
    assert _row(doc.render_block("http", results), "4") == [
        "4", "40.1", "73.6 / 140 ms", "22.5 / 47.8 ms"]
    assert _row(doc.render_block("budget_mmlu", results), "25%")[1:4] == [
        "98.4%", "0.696", "0"]
    assert _row(doc.render_block("checkpoint", results), "10,000")[3] == "16.1 MB, 106 ms"
    assert _row(doc.render_block("policy", results), "32")[1:] == ["151", "88"]
    assert _row(doc.render_block("startup", results), "2")[1:] == [
        "6.2 s", "0.05 s", "0.5 s", "5.1 s", "20 ms", "2,600 MB", "1,000,000"]
    assert _row(doc.render_block("peers", results), "river_linucb")[1:] == [
        "371", "402", "0.786", "576"]
    assert _row(doc.render_block("locust", results), "16") == [
        "16", "31.5", "310 / 900 ms", "120 / 700 ms", "0 of 3,779"]
    assert _row(doc.render_block("embedder", results), "`minilm` (default)")[1:6] == [
        "0.49 s (10.7 s the first time)", "248 MB", "8.37 / 16.7 ms", "180",
        "1.0000 / 1.0000"]
    assert _row(doc.render_block("embedder", results), "`minilm-int8`")[1:4] == [
        "0.52 s (11.9 s the first time)", "170 MB", "5.02 / 10 ms"]
    # each table says what measured it, and where
    assert router.rstrip().endswith(
        "Measured with `.venv/bin/python benchmarks/bench_router.py` on 2 cores "
        "(Linux-6.1-x86_64, Python 3.11.7), 2027-01-04 12:00 UTC.")


def test_a_missing_result_renders_the_command_that_writes_it(doc: ModuleType,
                                                             tmp_path: Path) -> None:
    assert doc.render_block("budget_mmlu", tmp_path) == (
        "Not measured yet: run `.venv/bin/python benchmarks/bench_budget_mmlu.py --seeds 0 1 2` "
        "(it writes `benchmarks/results/budget_mmlu.json`), then "
        "`python scripts/bench_doc.py --write`.\n")
    results = _results(doc)
    del results["http"]
    text = doc.render(doc.DOC.read_text(), _write(tmp_path / "results", results))
    http = text.split("<!-- bench:http:start -->\n", 1)[1].split("<!-- bench:http:end -->")[0]
    assert http.startswith("Not measured yet: run `.venv/bin/python benchmarks/bench_http.py`")
    assert "| 25% | 98.4% |" in text  # the others render


def test_check_fails_on_a_hand_edit_or_a_small_run(doc: ModuleType, tmp_path: Path) -> None:
    results = _results(doc)
    folder = _write(tmp_path / "results", results)
    page = tmp_path / "benchmarks.md"
    shutil.copy(doc.DOC, page)
    check = ["--check", "--doc", str(page), "--results", str(folder)]
    assert doc.main(check) == 1  # the tables are still the repository's
    assert doc.main(["--write", "--doc", str(page), "--results", str(folder)]) == 0
    assert doc.main(check) == 0
    prose = page.read_text().split("<!-- bench:suite:start -->")[0]
    assert prose == doc.DOC.read_text().split("<!-- bench:suite:start -->")[0]
    page.write_text(page.read_text().replace("| 4 | 40.1 |", "| 4 | 44.1 |"))
    assert doc.main(check) == 1
    assert doc.main(["--write", "--doc", str(page), "--results", str(folder)]) == 0
    results["policy"]["machine"]["args"]["rounds"] = 200
    _write(folder, {"policy": results["policy"]})
    assert doc.main(["--write", "--doc", str(page), "--results", str(folder)]) == 0
    assert doc.main(check) == 1  # renders, but is not the documented command's run
    with pytest.raises(ValueError, match="missing"):
        doc.render("no markers here", folder)


def test_the_machine_line_names_the_cpu_where_the_json_has_it(doc: ModuleType) -> None:
    m = _machine("benchmarks/bench_router.py", {})
    assert "on 2 cores (Linux-6.1-x86_64, Python 3.11.7)" in doc.machine_line(m)
    line = doc.machine_line({**m, "cpu": "AMD EPYC"})
    assert "on 2 cores (AMD EPYC; Linux-6.1-x86_64, Python 3.11.7), 2027-01-04 12:00" in line

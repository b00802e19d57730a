from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bandit_router.cli import main


def test_demo_fast(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rounds", "300", "--report-every", "100", "--fast"]) == 0
    out = capsys.readouterr().out
    assert out.count("traffic:") == 3
    assert "always-strongest" in out and "% saved" in out
    assert "best: opencode/coder" in out


def test_demo_rejects_bad_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rounds", "0"]) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "-1"], "seed must be an integer"),
    (["--report-every", "0"], "--report-every must be >= 1"),
    (["--cost-weight", "-3"], "cost_weight must be in [0, 1e+06]"),
    (["--database-url", "nope://x"], "is not a SQLite or PostgreSQL URL")])
def test_demo_refuses_bad_arguments_before_any_round(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--fast", "--rounds", "20", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "rounds" not in captured.out


@pytest.mark.slow
def test_demo_console_script_with_the_real_embedder(tmp_path) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "bandit-router")
    db = tmp_path / "demo.db"
    proc = subprocess.run([exe, "demo", "--rounds", "150", "--report-every", "50",
                           "--database-url", f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=300, check=True)
    assert "all-MiniLM-L6-v2" in proc.stdout
    assert proc.stdout.count("traffic:") == 3
    assert db.exists()  # the decisions and rewards went to the named database


@pytest.mark.slow  # the real MiniLM on every round
def test_replay_command(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "rounds.csv"
    assert main(["replay", "synthetic", "--limit", "400", "--cost-weight", "50",
                 "--gamma-scale", "30", "--embedding-dims", "16", "--exploration", "squarecb",
                 "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "whole stream (400 rounds)" in out and "last half (200 rounds)" in out
    for name in ("router", "random", "cheapest", "strongest", "oracle"):
        assert f"  {name} " in out
    assert "zero router at that cost" in out
    assert len(log.read_text().splitlines()) == 401


@pytest.mark.slow  # the real MiniLM on every round
def test_replay_command_with_optimism(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "synthetic", "--limit", "300", "--gamma-scale", "200",
                 "--optimism", "0.2"]) == 0
    assert "last half (150 rounds)" in capsys.readouterr().out
    assert main(["replay", "synthetic", "--limit", "10", "--optimism", "0.2",
                 "--exploration", "epsilon"]) == 2
    assert "optimism is an option of squarecb" in capsys.readouterr().err
    assert main(["replay", "synthetic", "--limit", "300", "--gamma-scale", "200",
                 "--optimism", "0.2", "--baseline-strength", "10"]) == 0
    assert "last half (150 rounds)" in capsys.readouterr().out
    assert main(["replay", "synthetic", "--limit", "10", "--baseline-strength", "10",
                 "--exploration", "softmax"]) == 2
    assert "baseline_strength is an option of squarecb" in capsys.readouterr().err


def test_replay_command_with_a_warm_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "synthetic", "--limit", "400", "--warm-start", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "warm start: 100 tasks" in out and "whole stream (300 rounds)" in out
    for bad in ("1", "-0.1", "nan"):
        assert main(["replay", "synthetic", "--limit", "40", "--warm-start", bad]) == 2
        assert "warm_start must be a share in [0, 1)" in capsys.readouterr().err
    assert main(["replay", "synthetic", "--limit", "1", "--warm-start", "0.9"]) == 2
    assert "leaves none of the 1 tasks to replay" in capsys.readouterr().err
    for limit in ("0", "-5"):
        assert main(["replay", "synthetic", "--limit", limit]) == 2
        assert "--limit must be at least 1 task" in capsys.readouterr().err
    assert main(["replay", "synthetic", "--limit", "40", "--seed", "-1"]) == 2
    assert "seed must be an integer in [0, 2**63)" in capsys.readouterr().err


def test_replay_command_checks_the_log_s_folder_first(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "missing" / "rounds.csv"
    assert main(["replay", "synthetic", "--limit", "40", "--log", str(log)]) == 2
    captured = capsys.readouterr()
    assert "its folder does not exist" in captured.err and "rounds/s" not in captured.out


def test_replay_command_on_a_user_log(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"task_id": str(i), "task": f"ask {i}", "model": m,
                                          "quality": q, "cost_usd": c})
                              for i in range(30)
                              for m, q, c in (("x/big", 1.0, 0.01), ("y/small", 0.5, 0.0001))))
    assert main(["replay", str(path), "--all-models"]) == 0
    out = capsys.readouterr().out
    assert "always x/big" in out and "30 rounds" in out


def _demo_lines(capsys: pytest.CaptureFixture[str], seed: int) -> list[str]:
    assert main(["demo", "--rounds", "240", "--report-every", "80", "--fast",
                 "--seed", str(seed)]) == 0
    # the first line names the temporary database, which differs per run
    return capsys.readouterr().out.splitlines()[1:]


def test_demo_gives_one_result_per_seed(capsys: pytest.CaptureFixture[str]) -> None:
    first = _demo_lines(capsys, 5)
    assert _demo_lines(capsys, 5) == first
    assert any("% saved" in line for line in first)
    assert _demo_lines(capsys, 6) != first


def test_replay_limit_is_a_seeded_random_sample(tmp_path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "sorted.jsonl"  # sorted by task family, as published tables often are
    path.write_text("\n".join(json.dumps({"task_id": f"t{i:03d}", "task": f"ask {i}",
                                          "model": m, "quality": q, "cost_usd": c})
                              for i in range(200)
                              for m, q, c in (("x/big", 1.0, 0.01), ("y/small", 0.5, 1e-4))))
    log = tmp_path / "rounds.csv"
    assert main(["replay", str(path), "--limit", "20", "--seed", "3", "--log", str(log)]) == 0
    assert "whole stream (20 rounds)" in capsys.readouterr().out
    ids = [line.split(",")[1] for line in log.read_text().splitlines()[1:]]
    assert len(set(ids)) == 20 and max(ids) > "t100"  # not the file's first 20 tasks
    assert main(["replay", str(path), "--limit", "20", "--seed", "3",
                 "--log", str(tmp_path / "again.csv")]) == 0
    again = [line.split(",")[1] for line in (tmp_path / "again.csv").read_text()
             .splitlines()[1:]]
    assert again == ids


def test_replay_reports_dropped_rows(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rb.csv"
    path.write_text("prompt,a/x,a/x|total_cost,b/y,b/y|total_cost\n"
                    + "".join(f"q{i},1,0.01,{'' if i == 3 else 0},0.001\n" for i in range(12)))
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 task(s) dropped" in out and "11 rounds" in out


def test_replay_reads_a_gzipped_routerbench_table_and_says_what_it_cannot_read(
        tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    import numpy as np

    monkeypatch.setenv("BANDIT_ROUTER_CACHE", str(tmp_path / "cache"))

    path = tmp_path / "rb.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8-sig") as fh:  # with a BOM, as Excel saves it
        fh.write("prompt,a/x,a/x|total_cost,b/y,b/y|total_cost\n"
                 + "".join(f"q{i},1,0.01,0,0.001\n" for i in range(9)))
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "embedding 9 tasks ahead" in out and "replaying rb: 9 tasks x 2 models" in out
    # embedded once: the next replay of the same table reads the vectors back
    cached = list((tmp_path / "cache").glob("rb-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (9, 384)
    assert main(["replay", str(tmp_path / "nowhere.csv")]) == 2
    assert "nowhere.csv" in capsys.readouterr().err
    binary = tmp_path / "noise.csv"
    binary.write_bytes(b"\xff\xfe\x8b" * 20)
    assert main(["replay", str(binary)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bench_quality_from_json_and_readme(tmp_path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from bandit_router.cli import README_END, README_START
    from bandit_router.eval import protocol
    from bandit_router.eval.datasets import synthetic_dataset
    from bandit_router.eval.simulation import HashEmbedder

    tiny = protocol.Workload(
        name="tiny", description="tiny", cost_weights=(50,),
        load=lambda: replace(synthetic_dataset(200, seed=1), name="tiny",
                             embeddings=HashEmbedder().embed(synthetic_dataset(200,
                                                                               seed=1).texts)),
        targets=(protocol.Target(kind="quality", quality=0.99),))
    result = protocol.run_protocol([tiny], seeds=[0])
    path = tmp_path / "q.json"
    protocol.write_json(result, path)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    assert main(["bench", "quality", "--from-json", str(path), "--readme", str(readme)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "MISS tiny" in out
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert protocol.render_markdown(result) in text
    # --strict fails on a missed target
    assert main(["bench", "quality", "--from-json", str(path), "--strict"]) == 1
    bad = tmp_path / "no-markers.md"
    bad.write_text("nothing here")
    assert main(["bench", "quality", "--from-json", str(path), "--readme", str(bad)]) == 2


def test_bench_quality_replays_a_table_of_your_own(
        tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.conftest import write_routerbench

    monkeypatch.setenv("BANDIT_ROUTER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "ours.csv"
    write_routerbench(path, 60, gaps=2)
    out = tmp_path / "q.json"
    assert main(["bench", "quality", "--table", str(path), "--seeds", "0",
                 "--cost-weights", "ours=20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "loaded ours: 58 tasks x 5 models" in printed and "1 replays" in printed
    assert f"their vectors: embedded once, then read from {tmp_path / 'cache'}" in printed
    assert "ours           vs hull >= +0.000 mean, >= -0.005 worst seed" in printed
    result = json.loads(out.read_text())
    assert list(result["workloads"]) == ["ours"]  # the built-in workloads are not run
    assert result["workloads"]["ours"]["dropped_rows"] == 2
    # embedded by the router's own embedder (MiniLM: 384 dimensions), once
    (cached,) = (tmp_path / "cache").glob("ours-*.npy")
    assert np.load(cached).shape == (58, 384)
    # a missing file, or two workloads of one name: refused before any replay
    assert main(["bench", "quality", "--table", str(tmp_path / "nowhere.csv")]) == 2
    assert "no table at" in capsys.readouterr().err
    clash = tmp_path / "synthetic.csv"
    write_routerbench(clash, 20)
    assert main(["bench", "quality", "--data", str(tmp_path), "--table", str(clash),
                 "--workloads", "synthetic"]) == 2
    captured = capsys.readouterr()
    assert "two workloads named ['synthetic']" in captured.err and "loaded" not in captured.out
    # an earlier result is printed, or a table run: not both at once
    assert main(["bench", "quality", "--from-json", str(out), "--table", str(path)]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_replay_of_a_table_without_prices(tmp_path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import write_routerbench

    monkeypatch.setenv("BANDIT_ROUTER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "unpriced.csv"
    write_routerbench(path, 40, priced=False)
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "of the strongest's quality at no cost; zero router at that cost" in out


def test_bench_quality_argument_errors(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "quality", "--set", "policy.gamma_scale=-1"]) == 2
    assert "gamma_scale" in capsys.readouterr().err
    assert main(["bench", "quality", "--data", str(tmp_path), "--workloads", "mmlu_pro"]) == 2
    assert "no workload ['mmlu_pro']" in capsys.readouterr().err
    # a grid the router would refuse, or for a workload not run: refused before any replay
    assert main(["bench", "quality", "--data", str(tmp_path), "--workloads", "synthetic",
                 "--cost-weights", "synthetic=20,-5"]) == 2
    captured = capsys.readouterr()
    assert "'synthetic' has -5" in captured.err and "loaded" not in captured.out
    assert main(["bench", "quality", "--data", str(tmp_path), "--workloads", "synthetic",
                 "--cost-weights", "mmlu_pro=100"]) == 2
    assert "not among the workloads run" in capsys.readouterr().err
    assert main(["bench", "quality", "--cost-weights", "synthetic=a,b"]) == 2

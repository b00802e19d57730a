"""Dataset loaders; the MMLU-Pro ones run when the shared data is present."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bandit_router import InvalidInputError
from bandit_router.eval.datasets import (
    PrecomputedEmbedder,
    RoutingDataset,
    default_data_dir,
    fit_prices,
    load_log,
    load_mmlu_pro,
    load_routerbench,
    load_table,
    mmlu_pro_models,
    synthetic_dataset,
    table_name,
)
from bandit_router.eval.protocol import table_workload
from tests.conftest import write_routerbench

MMLU = default_data_dir() / "mmlu_pro"
needs_mmlu = pytest.mark.skipif(not (MMLU / "prompts.jsonl.gz").exists(),
                                reason="shared MMLU-Pro data not present (BANDIT_ROUTER_DATA)")


@needs_mmlu
def test_mmlu_pro_matches_its_published_reference_points() -> None:
    ds = load_mmlu_pro(MMLU)
    assert len(ds) == 10_225 and len(ds.models) == 13
    gpt4o = ds.models.index("gpt-4o-2024-05-13")
    flash = ds.models.index("gemini-1.5-flash-002")
    assert ds.quality[:, gpt4o].mean() == pytest.approx(0.731, abs=5e-4)
    assert ds.cost[:, gpt4o].mean() == pytest.approx(0.00687, rel=1e-3)
    assert ds.quality[:, flash].mean() == pytest.approx(0.656, abs=5e-4)
    assert ds.embeddings is not None and ds.embeddings.shape == (10_225, 384)
    assert np.allclose(np.linalg.norm(ds.embeddings, axis=1), 1, atol=1e-3)
    assert ds.prices["gpt-4o-2024-05-13"] == (5.0, 15.0)
    assert set(ds.groups or []) and len(set(ds.groups or [])) == 14


@needs_mmlu
def test_mmlu_pro_at_one_price_takes_the_models_without_one() -> None:
    models = mmlu_pro_models(MMLU)
    assert len(models) == 31 and "Qwen1.5-72B-Chat" in models  # (no public price)
    ds = load_mmlu_pro(MMLU, models=["Qwen1.5-72B-Chat", "gpt-4o-2024-05-13"],
                       price_per_mtok=1.0, with_embeddings=False, limit=50)
    assert ds.prices == {m: (1.0, 1.0) for m in ds.models}
    assert ds.output_tokens is not None and ds.input_tokens is not None
    assert ds.cost == pytest.approx((ds.input_tokens[:, None] + ds.output_tokens) / 1e6)
    with pytest.raises(InvalidInputError):  # at its public price: none, so no question
        load_mmlu_pro(MMLU, models=["Qwen1.5-72B-Chat"], with_embeddings=False)


def test_a_price_per_token_must_be_a_number_at_least_zero() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="price_per_mtok"):
            load_mmlu_pro("/nonexistent", price_per_mtok=bad)


def test_log_round_trip(tmp_path: Path) -> None:
    rows = [{"task_id": f"t{i}", "task": f"question {i}", "model": m,
             "quality": float((i + k) % 2), "cost_usd": 0.001 * (k + 1), "output_tokens": 50}
            for i in range(5) for k, m in enumerate(["a/big", "b/small"])]
    rows.append({"task_id": "t9", "task": "only one model", "model": "a/big", "quality": 1,
                 "cost_usd": 0.1})
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ds = load_log(path)
    assert ds.models == ["a/big", "b/small"] and len(ds) == 5  # t9 lacks a model: dropped
    assert ds.quality[0].tolist() == [0.0, 1.0] and ds.cost[0].tolist() == [0.001, 0.002]
    assert ds.catalog().model_keys() == ["a/big", "b/small"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task": "x", "model": "m"}))
    with pytest.raises(InvalidInputError):
        load_log(bad)


def test_routerbench_csv(tmp_path: Path) -> None:
    path = tmp_path / "rb.csv"
    path.write_text("sample_id,prompt,eval_name,gpt-4,gpt-4|total_cost,gpt-4|model_response,"
                    "llama,llama|total_cost,llama|model_response\n"
                    "s1,What is 2+2?,math,1,0.01,4,0,0.0001,5\n"
                    "s2,Capital of France?,geo,1,0.02,Paris,1,0.0002,Paris\n")
    ds = load_routerbench(path)
    assert ds.models == ["gpt-4", "llama"] and ds.task_ids == ["s1", "s2"]
    assert ds.quality.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert ds.cost[1, 1] == pytest.approx(0.0002)


def test_a_table_is_named_after_its_file_without_the_format_suffix(tmp_path: Path) -> None:
    """One rule for every reader and the protocol: dots inside the name are kept."""
    log_row = {"task_id": "t", "task": "q", "model": "a/m", "quality": 1, "cost_usd": 0.1}
    (tmp_path / "gpt-4.1-log.jsonl.gz").write_bytes(gzip.compress(json.dumps(log_row).encode()))
    write_routerbench(tmp_path / "bench.v2.csv", 5)
    assert load_table(tmp_path / "gpt-4.1-log.jsonl.gz").name == "gpt-4.1-log"
    assert load_table(tmp_path / "bench.v2.csv").name == "bench.v2"
    assert table_workload(tmp_path / "bench.v2.csv").name == "bench.v2"
    assert table_name("notes.txt") == "notes.txt" and table_name(".csv") == ".csv"


def test_dataset_validation_and_subset() -> None:
    ds = synthetic_dataset(50, seed=2)
    sub = ds.subset([3, 1])
    assert sub.texts == [ds.texts[3], ds.texts[1]] and np.allclose(sub.quality[0], ds.quality[3])
    with pytest.raises(InvalidInputError):
        RoutingDataset(name="x", task_ids=["1"], texts=["t"], models=["m"],
                       quality=np.array([[1.5]]), cost=np.array([[0.0]]),
                       latency=np.array([[1.0]]))
    vectors = np.ones((50, 4), np.float32)
    assert replace(ds, embeddings=vectors).embeddings is vectors
    vectors[7, 2] = np.nan  # (a vector of one task)
    with pytest.raises(InvalidInputError, match=r"finite .* in 1 tasks"):
        replace(ds, embeddings=vectors)
    with pytest.raises(InvalidInputError, match="one embedding per task"):
        replace(ds, embeddings=np.ones(50, np.float32))


def test_input_token_counts_are_the_datasets_else_estimated_from_the_text() -> None:
    from bandit_router.core._features import estimate_tokens

    text = "route this request to the cheapest model that can answer it"
    bare = RoutingDataset(name="x", task_ids=["1"], texts=[text], models=["m"],
                          quality=np.array([[1.0]]), cost=np.array([[0.0]]),
                          latency=np.array([[1.0]]))
    assert bare.input_token_counts().tolist() == [float(estimate_tokens(text))]
    given = replace(bare, input_tokens=np.array([7]))
    counts = given.input_token_counts()
    assert counts.tolist() == [7.0] and counts.dtype == np.float64


def test_with_models_keeps_the_tasks_and_only_those_models() -> None:
    ds = synthetic_dataset(40, seed=3)
    ds = RoutingDataset(**{**ds.__dict__, "prices": {m: (1.0, 2.0) for m in ds.models},
                           "embeddings": np.ones((40, 4), np.float32)})
    picked = [ds.models[3], ds.models[0]]
    only = ds.with_models(picked, name="two")
    assert only.name == "two" and only.models == picked and only.texts == ds.texts
    assert np.array_equal(only.quality, ds.quality[:, [3, 0]])
    assert np.array_equal(only.cost[:, 1], ds.cost[:, 0])
    assert only.output_tokens is not None and ds.output_tokens is not None
    assert np.array_equal(only.output_tokens, ds.output_tokens[:, [3, 0]])
    assert set(only.prices) == set(picked) and only.embeddings is ds.embeddings
    assert only.catalog().model_keys() == [s.key for s in only.catalog()]
    for bad in ([], ["nobody/here"], [picked[0], picked[0]]):
        with pytest.raises(InvalidInputError, match="distinct models"):
            ds.with_models(bad)


def test_precomputed_embedder() -> None:
    vecs = np.eye(3, dtype=np.float32)
    e = PrecomputedEmbedder(["a", "b", "c"], vecs)
    assert np.allclose(e.embed(["c", "a"]), vecs[[2, 0]])
    with pytest.raises(KeyError):
        e.embed(["unknown"])


def test_routerbench_drops_rows_with_gaps_and_reads_gzip(tmp_path: Path, caplog) -> None:
    import gzip
    import logging

    text = ("sample_id,prompt,eval_name,a/big,a/big|total_cost,a/big|model_response,"
            "b/small,b/small|total_cost\n"
            "s1,What is 2+2?,math,1,0.01,four,0,0.0001\n"
            "s2,Capital of France?,geo,,0.02,Paris,1,0.0002\n"     # big has no score
            "s3,Name a colour,misc,1,,red,1,0.0002\n"              # big has no cost
            "s4,Say hi,misc,1,0.03,hi there friend,nan,0.0003\n"  # small's score is NaN
            "s5,Count to three,misc,0.5,0.01,1 2 3,1,0.0001\n"
            "s6,,misc,1,0.01,yes,1,0.0001\n"                        # no prompt
            "s7,  ,misc,1,0.01,yes,1,0.0001\n")                     # a blank prompt
    path = tmp_path / "rb.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    with caplog.at_level(logging.WARNING, logger="bandit_router"):
        ds = load_routerbench(path)
    assert ds.task_ids == ["s1", "s5"] and ds.dropped == 5
    assert "5 of 7 rows dropped" in caplog.text
    assert ds.name == "rb" and ds.groups == ["math", "misc"]
    assert ds.quality.tolist() == [[1.0, 0.0], [0.5, 1.0]]
    # input tokens from the prompt, output tokens from the response where there is one
    assert ds.input_tokens is not None and ds.input_tokens.tolist() == [3, 4]
    assert ds.output_tokens is not None and ds.output_tokens[:, 0].tolist() == [1.0, 2.0]
    assert ds.output_tokens[:, 1].tolist() == [300.0, 300.0]
    assert ds.subset([1]).dropped == 5
    everything_missing = tmp_path / "empty.csv"
    everything_missing.write_text("prompt,m,m|total_cost\nq,,0.1\n")
    with pytest.raises(InvalidInputError, match="every row lacks"):
        load_routerbench(everything_missing)
    ten_scale = tmp_path / "ten.csv"  # an MT-bench-like 1-10 grade, not rescaled
    ten_scale.write_text("prompt,m,m|total_cost\nq1,1.0000001,0.1\nq2,7,0.1\n")
    with pytest.raises(InvalidInputError, match=r"m has 7 on row 2 .* rescale"):
        load_routerbench(ten_scale)
    ten_scale.write_text("prompt,m,m|total_cost\nq1,1.0000001,0.1\nq2,-0.0000001,0.1\n")
    assert load_routerbench(ten_scale).quality.tolist() == [[1.0], [0.0]]  # rounding: clipped
    no_scores = tmp_path / "noscore.csv"
    no_scores.write_text("prompt,m|total_cost\nq,0.1\n")
    with pytest.raises(InvalidInputError, match="no score column"):
        load_routerbench(no_scores)


def test_routerbench_pickle_as_published(tmp_path: Path) -> None:
    """RouterBench's files are pickled pandas frames: scores as floats (NaN where a model
    was not graded), a multi-turn prompt as a list of turns, responses per turn."""
    import pandas as pd

    frame = pd.DataFrame({
        "sample_id": ["mmlu.1", "mtbench.2", "gsm8k.3"],
        "prompt": ["Which planet is red?", ["Write a poem.", "Now shorter."], "2+3?"],
        "eval_name": ["mmlu-astronomy", "mt-bench", "gsm8k"],
        "oracle_model_to_route_to": ["small/m", "big/m", "small/m"],
        "big/m": [1.0, 0.9, np.nan],
        "big/m|model_response": ["Mars", ["A poem ...", "Short."], "5"],
        "big/m|total_cost": [0.002, 0.004, 0.001],
        "small/m": [1.0, 0.4, 1.0],
        "small/m|model_response": ["Mars", ["Roses ...", "Red."], "5"],
        "small/m|total_cost": [0.0001, 0.0002, 0.0001],
    })
    path = tmp_path / "routerbench_0shot.pkl"
    frame.to_pickle(path)
    ds = load_routerbench(path)
    assert ds.models == ["big/m", "small/m"] and ds.dropped == 1  # gsm8k: big has no score
    assert ds.texts == ["Which planet is red?", "Write a poem.\n\nNow shorter."]
    assert ds.quality.tolist() == [[1.0, 1.0], [0.9, 0.4]]
    assert ds.groups == ["mmlu-astronomy", "mt-bench"] and ds.task_ids[1] == "mtbench.2"
    assert ds.output_tokens is not None and ds.output_tokens[1, 0] == 5.0  # both turns (18 chars)
    # turns held as numpy arrays (as pandas may hold them): read as the lists are
    arrays = frame.copy()
    arrays["prompt"] = pd.Series(["Which planet is red?",
                                  np.array(["Write a poem.", "Now shorter."], dtype=object),
                                  "2+3?"], dtype=object)
    arrays["big/m|model_response"] = pd.Series(
        ["Mars", np.array(["A poem ...", "Short."], dtype=object), "5"], dtype=object)
    as_arrays = tmp_path / "arrays.pkl"
    arrays.to_pickle(as_arrays)
    again = load_routerbench(as_arrays)
    assert again.texts == ds.texts and again.output_tokens is not None
    assert again.output_tokens.tolist() == ds.output_tokens.tolist()
    # a prompt cell with nothing in it (None, NaN, no turns with text): the row is dropped
    gaps = frame.copy()
    gaps["prompt"] = pd.Series([None, ["", " "], np.nan], dtype=object)
    gaps["big/m"] = [1.0, 0.9, 0.5]
    gaps = pd.concat([gaps, frame.iloc[:1]], ignore_index=True)
    with_gaps = tmp_path / "gaps.pkl"
    gaps.to_pickle(with_gaps)
    kept = load_routerbench(with_gaps)
    assert kept.texts == ["Which planet is red?"] and kept.dropped == 3
    not_a_frame = tmp_path / "list.pkl"
    pd.to_pickle([1, 2], not_a_frame)
    with pytest.raises(InvalidInputError, match="not a DataFrame"):
        load_routerbench(not_a_frame)
    no_prompt = tmp_path / "noprompt.pkl"
    frame.drop(columns=["prompt"]).to_pickle(no_prompt)
    with pytest.raises(InvalidInputError, match="no 'prompt' column"):
        load_routerbench(no_prompt)


def test_routerbench_pickle_without_pandas_says_how_to_read_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    path = tmp_path / "rb.pkl"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "pandas", None)  # an import of it fails
    with pytest.raises(InvalidInputError, match=r"bandit-router\[routerbench\]"):
        load_routerbench(path)


def test_catalog_prices_fitted_to_the_costs() -> None:
    # costs made by a price formula: the fitted catalog gives them back per request
    n = 200
    rng = np.random.default_rng(0)
    n_in = rng.integers(20, 2000, n)
    n_out = rng.integers(10, 600, n).astype(float)
    cost = np.stack([(3.0 * n_in + 15.0 * n_out) / 1e6, (0.1 * n_in + 0.4 * n_out) / 1e6],
                    axis=1)
    ds = RoutingDataset(name="x", task_ids=[str(i) for i in range(n)],
                        texts=[f"t{i}" for i in range(n)], models=["p/big", "p/small"],
                        quality=np.full((n, 2), 0.5), cost=cost, latency=np.ones((n, 2)),
                        output_tokens=np.stack([n_out, n_out], axis=1), input_tokens=n_in)
    big, small = ds.catalog()
    assert big.input_price_per_1m == pytest.approx(3.0) and big.output_price_per_1m == \
        pytest.approx(15.0)
    assert small.input_price_per_1m == pytest.approx(0.1)
    assert big.cost_usd(input_tokens=1000, output_tokens=100) == pytest.approx(0.0045)
    # a price that explains nothing is not made negative
    pin, pout = fit_prices([1e-3, 1e-3, 1e-3], [10, 100, 1000], [1000, 100, 10])
    assert pin >= 0 and pout >= 0
    # costs in another unit (cents, per thousand requests) fit an absurd price: said so
    dear = replace(ds, cost=cost * 1e5)
    with pytest.raises(InvalidInputError, match=r"p/big's costs .* must be USD per request"):
        dear.catalog()


def test_model_names_of_any_shape_make_a_catalog_a_replay_routes_among() -> None:
    """A benchmark names its models as it likes: LiteLLM's provider/org/model, a bare name,
    spaces, colons, a pipe. The catalog's key is the name (a bare one under "dataset/")."""
    from bandit_router.eval.replay import replay
    from bandit_router.eval.simulation import HashEmbedder

    names = ["together_ai/meta-llama/Llama-3-70b", "zero-one-ai/Yi-34B-Chat", "claude v2:1",
             "a|b"]
    n = 120
    rng = np.random.default_rng(1)
    ds = RoutingDataset(name="names", task_ids=[str(i) for i in range(n)],
                        texts=[f"task {i}" for i in range(n)], models=names,
                        quality=rng.integers(0, 2, (n, 4)).astype(float),
                        cost=np.tile([0.004, 0.002, 0.001, 0.0005], (n, 1)),
                        latency=np.ones((n, 4)))
    assert ds.model_keys() == ["together_ai/meta-llama/Llama-3-70b", "zero-one-ai/Yi-34B-Chat",
                               "dataset/claude v2:1", "dataset/a|b"]
    result = replay(ds, seed=0, embedder=HashEmbedder())
    assert len(result.order) == n and set(result.chosen.tolist()) <= {0, 1, 2, 3}


def test_csv_cells_longer_than_the_csv_module_reads_by_default(tmp_path: Path) -> None:
    """A long-context benchmark's prompt or response can pass csv's default cell limit
    (131,072 characters: ``_csv.Error`` before); the limit is put back after the read."""
    import csv

    long_prompt, long_answer = "context " * 25_000, "answer " * 30_000
    table = tmp_path / "long.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "a", "a|total_cost", "a|model_response"])
        writer.writerows([[long_prompt, 1, 0.01, long_answer], ["short", 0, 0.01, "no"]])
    ds = load_routerbench(table)
    assert ds.texts == [long_prompt, "short"] and ds.output_tokens is not None
    assert ds.output_tokens[0, 0] > 40_000  # from the long answer
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["task_id", "task", "model", "quality", "cost_usd"])
        writer.writerows([[1, long_prompt, "a", 1, 0.1], [1, long_prompt, "b", 0, 0.01]])
    assert load_log(log).texts == [long_prompt]
    assert csv.field_size_limit() == 131_072


def test_grades_written_as_true_and_false_read_as_one_and_zero(tmp_path: Path) -> None:
    """pandas writes a column of booleans to CSV as True/False: each row was dropped as a
    model without a score (and a table of them failed to load)."""
    table = tmp_path / "bools.csv"
    table.write_text("prompt,a,a|total_cost,b,b|total_cost\n"
                     "q1,True,0.01,False,0.001\nq2,false,0.01,TRUE,0.001\n")
    ds = load_routerbench(table)
    assert ds.quality.tolist() == [[1.0, 0.0], [0.0, 1.0]] and ds.dropped == 0


def test_log_rows_without_an_outcome_count_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("task_id,task,model,quality,cost_usd\n"
                    "1,one,a,1,0.1\n1,one,b,0,0.01\n"
                    "2,two,a,,0.1\n2,two,b,1,0.01\n"
                    "3,three,a,0.5,0.1\n3,three,b,1,0.01\n")
    ds = load_log(path)
    assert ds.task_ids == ["1", "3"] and ds.dropped == 1
    assert ds.input_tokens is not None and ds.input_tokens.tolist() == [1, 2]

"""Dataset loaders; the MMLU-Pro ones run when the shared data is present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bandit_router import InvalidInputError
from bandit_router.datasets import (
    PrecomputedEmbedder,
    RoutingDataset,
    default_data_dir,
    load_log,
    load_mmlu_pro,
    load_routerbench,
    synthetic_dataset,
)

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


def test_dataset_validation_and_subset() -> None:
    ds = synthetic_dataset(50, seed=2)
    sub = ds.subset([3, 1])
    assert sub.texts == [ds.texts[3], ds.texts[1]] and np.allclose(sub.quality[0], ds.quality[3])
    with pytest.raises(InvalidInputError):
        RoutingDataset(name="x", task_ids=["1"], texts=["t"], models=["m"],
                       quality=np.array([[1.5]]), cost=np.array([[0.0]]),
                       latency=np.array([[1.0]]))


def test_precomputed_embedder() -> None:
    vecs = np.eye(3, dtype=np.float32)
    e = PrecomputedEmbedder(["a", "b", "c"], vecs)
    assert np.allclose(e.embed(["c", "a"]), vecs[[2, 0]])
    with pytest.raises(KeyError):
        e.embed(["unknown"])

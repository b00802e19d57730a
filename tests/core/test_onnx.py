"""The ONNX Runtime embedder: the torch model's vectors, its export kept, bad models refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bandit_router import (
    DEFAULT_EMBEDDER,
    EMBEDDERS,
    HashEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from bandit_router.eval.datasets import default_data_dir, load_mmlu_pro
from bandit_router.eval.simulation import SyntheticWorkload

TEXTS = ["Translate 'Hello' to French", "Write a Python function that reverses a list.",
         "What is 17 * 23?", "Summarise this paragraph about remote work: " + "word " * 400,
         "x", "Ünïcödé — 日本語のテキスト 🚀", "  leading and trailing spaces  "]


def _prompts() -> list[str]:
    """Varied prompts: the synthetic workload's, and 80 MMLU-Pro questions when the data is
    there (long prompts that truncation at 256 word pieces cuts)."""
    wl = SyntheticWorkload(seed=5)
    texts = TEXTS + [wl.sample_task().text for _ in range(60)]
    if (default_data_dir() / "mmlu_pro").is_dir():
        questions = load_mmlu_pro().texts
        rng = np.random.default_rng(0)
        texts += [questions[i] for i in rng.choice(len(questions), 80, replace=False)]
    return texts


def test_float32_export_gives_the_torch_models_vectors(
        minilm: OnnxEmbedder, minilm_torch: SentenceTransformerEmbedder) -> None:
    texts = _prompts()
    onnx, torch = minilm.embed(texts), minilm_torch.embed(texts)
    assert onnx.shape == (len(texts), 384) and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosine = (onnx * torch).sum(axis=1)
    assert cosine.min() >= 0.9999
    # the same vectors under the same name: a store written by one is valid for the other
    assert minilm.name == minilm_torch.name == "all-MiniLM-L6-v2" and minilm.dim == 384


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(
        minilm: OnnxEmbedder, minilm_int8: OnnxEmbedder) -> None:
    together = minilm.embed(TEXTS)
    alone = np.vstack([minilm.embed([t]) for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)
    # int8 activations are scaled per call over the whole input: batched, a short text's
    # vector would move with its longest batch-mate; the int8 model embeds each text alone
    together = minilm_int8.embed(TEXTS)
    alone = np.vstack([minilm_int8.embed([t]) for t in TEXTS])
    assert np.array_equal(together, alone)


def test_the_default_embedder_gives_the_torch_models_vectors() -> None:
    """float32 by default on every CPU: int8 is faster only with int8 dot products, and a
    default that followed the CPU would split a fleet's checkpoints (docs/decisions.md)."""
    default = make_embedder()
    assert DEFAULT_EMBEDDER == "minilm" and isinstance(default, OnnxEmbedder)
    assert not default.quantize and default.name == "all-MiniLM-L6-v2"


def test_the_export_is_kept_and_reused(minilm: OnnxEmbedder) -> None:
    assert minilm.model_file is not None and minilm.model_file.is_file()
    before = minilm.model_file.stat().st_mtime_ns
    again = OnnxEmbedder()
    again.load()
    assert again.model_file == minilm.model_file
    assert again.model_file.stat().st_mtime_ns == before  # not exported a second time
    # an explicit file (an image built without torch names the one it carries)
    given = OnnxEmbedder(model_file=minilm.model_file, threads=1)
    assert np.allclose(given.embed(TEXTS[:3]), minilm.embed(TEXTS[:3]), atol=1e-6)


@pytest.mark.slow
def test_int8_weights_stay_close_to_float32(minilm: OnnxEmbedder, tmp_path: Path) -> None:
    texts = _prompts()
    int8 = OnnxEmbedder(quantize=True, cache=tmp_path)
    assert int8.name == "all-MiniLM-L6-v2-int8"  # other vectors, another name
    cosine = (int8.embed(texts) * minilm.embed(texts)).sum(axis=1)
    # (0.9938 at least on a CPU with int8 dot products, 0.9898 on MMLU-Pro without them)
    assert cosine.min() >= 0.98 and cosine.mean() >= 0.99
    assert int8.model_file is not None and int8.model_file.parent == tmp_path
    # the transformer's weights are int8; the word-piece table (half the file) stays float32
    assert int8.model_file.stat().st_size < 0.8 * minilm.model_file.stat().st_size  # type: ignore[union-attr]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # nothing half-written


def test_models_it_cannot_run_are_refused_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "cls-pooled"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 8, "pooling_mode_cls_token": True,
         "pooling_mode_mean_tokens": False}))
    with pytest.raises(ValueError, match="mean-pooled models only"):
        OnnxEmbedder(model_path=folder, cache=tmp_path).load()
    with pytest.raises(ValueError, match="no ONNX model"):
        OnnxEmbedder(model_file=tmp_path / "missing.onnx").load()
    with pytest.raises(ValueError, match="threads"):
        OnnxEmbedder(threads=0)


def test_embedders_are_named_by_one_table() -> None:
    assert EMBEDDERS == ("minilm", "minilm-int8", "minilm-torch", "hash")
    assert isinstance(make_embedder("hash"), HashEmbedder)
    assert isinstance(make_embedder("minilm-torch"), SentenceTransformerEmbedder)
    assert make_embedder("minilm-int8").name.endswith("-int8")
    for kind in EMBEDDERS:  # constructing one loads nothing (``dim`` would: not read here)
        embedder = make_embedder(kind)
        assert callable(embedder.embed) and embedder.name.startswith(("all-MiniLM", "hash"))
    with pytest.raises(ValueError, match="unknown embedder 'bert'"):
        make_embedder("bert")

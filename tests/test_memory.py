from __future__ import annotations

import numpy as np
import pytest

from bandit_router._memory import Memory


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(mem: Memory, rng: np.random.Generator, n: int) -> list[tuple]:
    rows = []
    for vec in unit(rng, n, mem.dim):
        key = f"p/m{rng.integers(3)}"
        q = float(rng.random())
        tokens = None if rng.random() < 0.2 else float(rng.integers(10, 100))
        mem.add(vec, key, quality=q, reward=q - 0.1, cost_usd=0.01, latency_s=1.0,
                output_tokens=tokens)
        rows.append((vec, key, q, tokens))
    return rows


def test_recall_counts_the_nearest_per_model() -> None:
    mem = Memory(dim=2, capacity=100)
    for vec, key, q in [([1, 0], "a/x", 1.0), ([0.9, 0.1], "a/x", 0.5), ([0, 1], "b/y", 0.2)]:
        v = np.array(vec, np.float32)
        mem.add(v / np.linalg.norm(v), key, quality=q, reward=q, cost_usd=0.0, latency_s=None,
                output_tokens=None)
    r = mem.recall(np.array([1, 0], np.float32), ["a/x", "b/y", "c/z"], k=2)
    assert r.count.tolist() == [2.0, 0.0, 0.0]
    assert r.quality_sum.tolist() == [1.5, 0.0, 0.0]
    assert r.tokens_count.tolist() == [0.0, 0.0, 0.0]
    assert Memory(dim=2).recall(np.array([1, 0], np.float32), ["a/x"], k=4).count.tolist() == [0]


def test_model_stats_match_brute_force_after_eviction() -> None:
    rng = np.random.default_rng(0)
    mem = Memory(dim=8, capacity=50)
    rows = fill(mem, rng, 30)
    mem.model_stats()  # warm the running totals, then keep adding through evictions
    rows += fill(mem, rng, 60)
    kept = rows[-len(mem):]
    assert len(mem) <= 50
    stats = mem.model_stats()
    for key in {r[1] for r in kept}:
        qs = [r[2] for r in kept if r[1] == key]
        toks = [r[3] for r in kept if r[1] == key and r[3] is not None]
        assert stats[key]["n"] == len(qs)
        assert stats[key]["quality"] == pytest.approx(np.mean(qs))
        assert stats[key]["output_tokens"] == pytest.approx(np.mean(toks))


def test_snapshot_round_trip() -> None:
    rng = np.random.default_rng(1)
    mem = Memory(dim=8, capacity=1000)
    fill(mem, rng, 40)
    copy = Memory.from_bytes(mem.to_bytes(), dim=8, capacity=1000)
    q = unit(rng, 1)[0]
    keys = ["p/m0", "p/m1", "p/m2"]
    a, b = mem.recall(q, keys, k=10), copy.recall(q, keys, k=10)
    assert a.count.tolist() == b.count.tolist()
    assert np.allclose(a.quality_sum, b.quality_sum)
    assert mem.model_stats() == copy.model_stats()
    with pytest.raises(ValueError):
        Memory.from_bytes(mem.to_bytes(), dim=4, capacity=10)

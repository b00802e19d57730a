from __future__ import annotations

import time

import numpy as np
import pytest

from bandit_router import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from bandit_router.eval.simulation import HashEmbedder


@pytest.mark.slow
def test_minilm_loads_offline_and_embeds(minilm_torch: SentenceTransformerEmbedder) -> None:
    minilm = minilm_torch
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert minilm.dim == 384 and minilm.name == "all-MiniLM-L6-v2"
    vecs = minilm.embed(["Translate 'Hello' to French", "Translate 'Goodbye' to Spanish",
                         "Write a Python function that reverses a list"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.1  # two translations are closer than translation/code
    again = minilm.embed(["Translate 'Hello' to French"])
    assert np.allclose(again[0], vecs[0], atol=1e-5)


def test_cached_embedder_hits_and_evicts() -> None:
    calls: list[int] = []

    class Counting(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().embed(texts)

    cached = CachedEmbedder(Counting(dim=16), size=2)
    first = cached.embed(["a", "b"])
    assert calls == [2]
    assert np.allclose(cached.embed(["b", "a"]), first[::-1])
    assert calls == [2] and cached.hits == 2
    cached.embed(["c"])  # evicts "b": "a" was used after it
    cached.embed(["a"])
    assert calls == [2, 1] and cached.hits == 3
    cached.embed(["b"])
    assert calls == [2, 1, 1] and cached.misses == 4


def test_embedders_satisfy_the_protocol() -> None:
    assert isinstance(HashEmbedder(), Embedder)
    assert isinstance(SentenceTransformerEmbedder(), Embedder)
    assert isinstance(CachedEmbedder(HashEmbedder()), Embedder)


def test_batching_embedder_coalesces_concurrent_calls() -> None:
    import threading

    from bandit_router import BatchingEmbedder

    batches: list[int] = []

    class Recording(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            batches.append(len(texts))
            time.sleep(0.005)  # a model's time: calls arriving meanwhile queue up
            return super().embed(texts)

    inner = Recording(dim=32)
    batching = BatchingEmbedder(inner, max_batch=64, max_wait_s=0.05)
    texts = [f"task number {i}" for i in range(16)]
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = batching.embed([texts[i]])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batching.close()
    assert sum(batches) == 16 and len(batches) < 16  # fewer model calls than callers
    for i, text in enumerate(texts):  # and every caller got its own row
        assert np.allclose(results[i][0], HashEmbedder(dim=32).embed([text])[0])


def test_a_lone_caller_does_not_wait_for_company() -> None:
    """At low traffic each call is embedded at once: waiting max_wait_s (here a second)
    for callers who do not come would only add latency."""
    from bandit_router import BatchingEmbedder

    batching = BatchingEmbedder(HashEmbedder(dim=32), max_wait_s=1.0)
    start = time.monotonic()
    for i in range(3):
        batching.embed([f"alone {i}"])
    batching.close()
    assert time.monotonic() - start < 1.0  # three calls, not one second each


def test_batching_embedder_passes_errors_to_every_caller() -> None:
    from bandit_router import BatchingEmbedder

    class Broken(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            raise RuntimeError("model exploded")

    batching = BatchingEmbedder(Broken(), max_wait_s=0.001)
    with pytest.raises(RuntimeError, match="exploded"):
        batching.embed(["x"])
    batching.close()
    with pytest.raises(RuntimeError, match="closed"):
        batching.embed(["x"])


def test_cache_size_zero_embeds_every_time_and_normalises() -> None:
    class Counting:
        dim, name, calls = 4, "counting", 0

        def embed(self, texts: list[str]) -> np.ndarray:
            Counting.calls += len(texts)
            return np.full((len(texts), 4), 2.0, np.float32)

    cached = CachedEmbedder(Counting(), size=0)
    out = cached.embed(["a", "a"])
    assert Counting.calls == 2 and cached.misses == 2 and cached.hits == 0
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)


def test_timed_embedder_counts_each_threads_own_embedding() -> None:
    import threading

    from bandit_router import TimedEmbedder

    class Slow:
        dim, name, closed = 4, "slow", False

        def embed(self, texts):
            time.sleep(0.05 if threading.current_thread().name == "slow" else 0.0)
            return np.ones((len(texts), 4), dtype=np.float32) / 2

        def close(self) -> None:
            Slow.closed = True

    timed = TimedEmbedder(Slow())
    assert timed.dim == 4 and timed.name == "slow"
    seen: dict[str, float] = {}

    def work() -> None:
        timed.start()
        timed.embed(["a"])
        timed.embed(["b", "c"])  # both calls count
        seen[threading.current_thread().name] = timed.seconds()

    threads = [threading.Thread(target=work, name=n) for n in ("slow", "fast")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["slow"] >= 0.1 and seen["fast"] < 0.05  # neither sees the other's time
    assert timed.seconds() == 0.0  # this thread embedded nothing
    timed.start()
    with pytest.raises(TypeError):  # the inner error, as it is; its time counts too
        timed.embed(None)  # type: ignore[arg-type]
    assert timed.seconds() > 0.0
    timed.close()
    assert Slow.closed

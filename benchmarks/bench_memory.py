"""The task memory at a million remembered tasks: recall time, resident memory, how many of
the exact neighbours it finds, and its snapshot.

A router configured with ``memory_size=1_000_000`` is loaded (MiniLM, VW, FAISS, a SQLite
file) so that the resident memory is the whole process's; then a memory of that capacity
(compact: 8-bit codes in 2,048 lists) is filled one ``add()`` at a time, as the learner
fills it, with a million tasks resembling real ones: each is an MMLU-Pro question's MiniLM
vector plus Gaussian noise, renormalised (cosine about 0.86 to its question), or a random
unit vector when the data is missing. Measured:

- ``recall()`` of the 32 nearest (search and per-model statistics), 300 new tasks, one
  thread, p50/p99;
- the process's resident memory with the router loaded and the memory full;
- how many of the exact 32 neighbours the memory finds (the exact ones by brute force over
  the same million vectors);
- on the real MMLU-Pro questions themselves (10,000 of the data set's 12,032 vectors
  remembered, 200 others new): the exact neighbours found by the default memory (float
  vectors, 128 lists) and by the same rows in the same lists as 8-bit codes, so that the
  codes' own cost shows;
- how long the memory's lists took to fit (FAISS's k-means, one thread here:
  ``OMP_NUM_THREADS=1`` unless set; on a thread, from
  ``switch_at`` rows on; the bench waits for it there, as traffic slower than about a
  thousand rewards a second would give it the time), and the longest ``add()``: the one
  that moved the memory from its exact search to the IVF at ``move_at`` rows, once;
- the snapshot a checkpoint stores (outcomes, seqs, lists; the vectors stay in the event
  log) and the time to rebuild the memory from it once the vectors are read back (the
  reading itself, from the database, is not included).

    .venv/bin/python benchmarks/bench_memory.py [--tasks 1000000] [--out PATH]

Writes ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import exact_found, machine, percentiles, rss_mb, write_json

CHUNK = 100_000
NOISE = 0.03  # per dimension, on vectors whose dimensions are about 0.05


def question_vectors() -> np.ndarray | None:
    """MMLU-Pro's MiniLM vectors, unit length, that the task stream is drawn around; None
    (random unit vectors) when the data is missing. The vectors alone: the whole data set
    would count in the process's memory."""
    from bandit_router.eval.datasets import default_data_dir

    try:
        raw = np.load(default_data_dir() / "mmlu_pro" / "embeddings_all-MiniLM-L6-v2.f16.npy")
    except (FileNotFoundError, OSError) as exc:
        print(f"MMLU-Pro missing ({exc}): random unit vectors")
        return None
    return np.ascontiguousarray(
        raw / np.linalg.norm(raw.astype(np.float32), axis=1, keepdims=True), np.float32)


def tasks(base: np.ndarray | None, start: int, n: int, dim: int = 384) -> np.ndarray:
    """Tasks ``start .. start + n`` of the stream (the same for the same range: each chunk
    is drawn from its own seed)."""
    out = []
    for c0 in range(start - start % CHUNK, start + n, CHUNK):
        rng = np.random.default_rng([7, c0])
        if base is None:
            x = rng.normal(size=(CHUNK, dim))
        else:
            x = base[rng.integers(len(base), size=CHUNK)] + rng.normal(scale=NOISE,
                                                                       size=(CHUNK, dim))
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        lo, hi = max(start, c0) - c0, min(start + n, c0 + CHUNK) - c0
        out.append(x[lo:hi])
    return np.concatenate(out)


def exact_top(base: np.ndarray | None, n: int, queries: np.ndarray, k: int) -> np.ndarray:
    """The ids of the exact ``k`` nearest of ``queries`` among tasks ``0 .. n``."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for c0 in range(0, n, CHUNK):
        s = queries @ tasks(base, c0, min(CHUNK, n - c0)).T
        s_all = np.concatenate([best_s, s], axis=1)
        i_all = np.concatenate([best_i, np.arange(c0, c0 + s.shape[1])[None].repeat(
            len(queries), 0)], axis=1)
        top = np.argsort(-s_all, axis=1)[:, :k]
        best_s = np.take_along_axis(s_all, top, 1)
        best_i = np.take_along_axis(i_all, top, 1)
    return best_i


def real_tasks(base: np.ndarray) -> dict[str, Any]:
    """The default memory and the same with 8-bit codes on the real questions."""
    import faiss

    from bandit_router.core._memory import Memory

    x = np.ascontiguousarray(base[np.random.default_rng(0).permutation(len(base))])
    known, new = x[:10_000], x[-200:]
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(known)
    want = exact.search(new, 32)[1]
    out: dict[str, Any] = {"dataset": "mmlu_pro", "remembered": len(known),
                           "queries": len(new), "neighbours": 32}
    flat = Memory(dim=x.shape[1], capacity=50_000, compact=False, lists=128)
    for v in known:
        flat.add(v, "p/m", quality=1.0, reward=1.0, cost_usd=0.0, latency_s=None,
                 output_tokens=None)
    # the same rows in the same lists, as 8-bit codes: what the codes alone cost
    codes = Memory.from_bytes(flat.to_bytes(), dim=x.shape[1], capacity=50_000,
                              compact=True, lists=128)
    for name, mem in (("float", flat), ("codes", codes)):
        out[f"exact_found_{name}"] = exact_found(want, mem._search(new, 32)[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "memory.json"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import faiss

    from bandit_router import Router, RouterConfig
    from bandit_router.core._memory import Memory

    faiss.omp_set_num_threads(1)
    base = question_vectors()
    result: dict[str, Any] = {"machine": machine(args), "tasks": args.tasks,
                              "vectors": "mmlu_pro+noise" if base is not None else "random"}

    with tempfile.TemporaryDirectory() as tmp:
        router = Router(database_url=f"sqlite:///{tmp}/bench.db",
                        config=RouterConfig(memory_size=args.tasks))
        router.select("warm up: load every model")
        keys = [spec.key for spec in router.catalog]
        result["rss_router_mb"] = rss_mb()
        mem = Memory(dim=384, capacity=args.tasks)
        t0 = time.perf_counter()
        longest = 0.0  # the add that moved the memory to its IVF (k-means on the rows)
        for c0 in range(0, args.tasks, CHUNK):
            chunk = tasks(base, c0, min(CHUNK, args.tasks - c0))
            for j, v in enumerate(chunk):
                i = c0 + j
                t = time.perf_counter()
                mem.add(v, keys[i % len(keys)], quality=(i % 10) / 10, reward=0.5,
                        cost_usd=1e-4, latency_s=1.0, output_tokens=200, seq=i + 1)
                longest = max(longest, time.perf_counter() - t)
                if i + 1 == mem.switch_at:  # as traffic would, give the background fit time
                    result["fit_s"] = mem.wait_for_lists()
            print(f"  {c0 + len(chunk):,} tasks, {time.perf_counter() - t0:.0f} s", flush=True)
        del chunk, v  # (the bench's own data: not the router's memory)
        result["fill_s"] = time.perf_counter() - t0
        result["move_s"], result["move_at"] = longest, mem.move_at
        result["switch_at"] = mem.switch_at
        result["rss_full_mb"] = rss_mb()
        result["lists"], result["probes"], result["compact"] = mem.lists, mem.probes, \
            mem.compact
        queries = tasks(base, 10 * CHUNK + args.tasks, 300)  # never remembered
        ms = []
        for q in queries:
            t = time.perf_counter()
            mem.recall(q, keys, k=32)
            ms.append(1000 * (time.perf_counter() - t))
        result["recall_ms"] = percentiles(ms)
        got = mem._search(queries, 32)[1]
        result["exact_found"] = exact_found(exact_top(base, args.tasks, queries, 32), got)
        t = time.perf_counter()
        blob = mem.to_bytes(vectors=False)
        result["snapshot_mb"], result["snapshot_s"] = len(blob) / 2**20, \
            time.perf_counter() - t
        del mem
        vectors = tasks(base, 0, args.tasks)
        t = time.perf_counter()
        # (rows read back by their reward seq, 1 to the tasks: ``add(seq=i + 1)`` above)
        Memory.from_bytes(blob, dim=384, capacity=args.tasks,
                          fetch=lambda seqs: vectors[seqs - 1])
        result["reload_s"] = time.perf_counter() - t
        router.close()
    if base is not None:
        result["real_tasks"] = real_tasks(base)
        print("exact neighbours found on 10,000 MMLU-Pro questions: float "
              f"{result['real_tasks']['exact_found_float']:.1%}, 8-bit codes "
              f"{result['real_tasks']['exact_found_codes']:.1%}")
    print(f"{args.tasks:,} tasks ({result['vectors']}), {result['lists']} lists: recall "
          f"p50 {result['recall_ms']['p50']:.2f} ms, p99 {result['recall_ms']['p99']:.2f} ms; "
          f"process {result['rss_full_mb']:.0f} MB (router loaded: "
          f"{result['rss_router_mb']:.0f} MB); exact neighbours found "
          f"{result['exact_found']:.1%}; snapshot {result['snapshot_mb']:.1f} MB, rebuilt in "
          f"{result['reload_s']:.1f} s; filled in {result['fill_s']:.0f} s; lists fitted in "
          f"the background in {result['fit_s']:.1f} s, the longest add (the move to the IVF "
          f"at {result['move_at']:,} rows) {result['move_s']:.2f} s")
    write_json(args.out, result)


if __name__ == "__main__":
    main()

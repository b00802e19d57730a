"""Speed and memory of the router's hot path.

Prints:
- ``select()`` latency p50/p99 with the real MiniLM embedder on short, distinct prompts
  (every prompt a cache miss);
- the same with the embedding excluded (vectors computed beforehand and served by a
  lookup embedder), i.e. recall + constraints + VW + the committed event row;
- the same with four budgets in force (router hour/day/request, one tenant's day): the
  spend read, pacing and the reservation written with the event;
- ``reward()`` throughput (validate, commit, learn), one call after another; and the
  service's way, ``reward(learn=False)`` (validate, commit) with ``sync()`` learning after;
- ``reward(learn=False)`` from 8 threads at once, as the service's request threads call it:
  on SQLite, writes that arrive during a commit share the next one (group commit);
- the floor under a caller alone: one bare sqlite3 commit (WAL, ``synchronous=FULL``) on
  the same disk;
- resident memory after loading and at the end;
- FAISS recall latency (the part of ``select()`` that grows with history), the memory's
  size and its checkpoint (outcomes and reward seqs; the vectors stay in the event log), at
  10k, 50k and 100k remembered tasks (``--memory-sizes``);
- how many of the exact 32 neighbours the IVF finds on MMLU-Pro questions (when the data is
  there: ``BANDIT_ROUTER_DATA``).

Real parts throughout: bundled 15-model catalog, FAISS, VW, a SQLite file (WAL,
synchronous=FULL). With ``--database-url postgresql+psycopg://...`` the same on PostgreSQL,
in a scratch database the benchmark creates on that server (and drops at the end). Writes
every figure, with the machine it ran on, to ``--out`` (``benchmarks/results/router.json``;
``scripts/bench_doc.py`` makes docs/benchmarks.md's tables from it). Run:

    .venv/bin/python benchmarks/bench_router.py [--n 1000] [--database-url URL] \\
        [--memory-sizes 10000 50000 100000] [--out PATH]

The PostgreSQL table of docs/benchmarks.md (``benchmarks/results/router_postgresql.json``):

    .venv/bin/python benchmarks/bench_router.py --memory-sizes \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --out benchmarks/results/router_postgresql.json
"""

from __future__ import annotations

import argparse
import os
import shlex
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _results import (
    exact_found,
    four_budgets,
    machine,
    percentiles,
    prompts,
    rss_mb,
    scratch_database,
    write_json,
)

from bandit_router import DEFAULT_EMBEDDER, EMBEDDERS, Router, RouterConfig, make_embedder


class LookupEmbedder:
    """Serves precomputed vectors: takes the embedding model out of the measurement."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, name: str) -> None:
        self._rows = {t: v for t, v in zip(texts, vectors, strict=True)}
        self.dim = vectors.shape[1]
        self.name = name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._rows[t] for t in texts])


def show(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:6.2f} ms   p99 {p['p99']:6.2f} ms   mean {p['mean']:6.2f} ms"



def time_selects(router: Router, texts: Sequence[str], decisions: list[Any]) -> list[float]:
    """Milliseconds per select(); the decisions are kept for the reward measurement."""
    ms = []
    for text in texts:
        t = time.perf_counter()
        decisions.append(router.select(text))
        ms.append(1000 * (time.perf_counter() - t))
    return ms


def concurrent_rewards(router: Router, decisions: Sequence[Any], threads: int
                       ) -> dict[str, Any]:
    """``reward(learn=False)`` for ``decisions`` from ``threads`` threads at once: rewards
    acknowledged a second, and how many durable commits held them."""
    writes = router.store._reward_writes  # (the group commit's own counts)
    groups, held = writes.groups, writes.writes
    rng = np.random.default_rng(1)
    qualities = rng.random(len(decisions)).tolist()

    def work(k: int) -> None:
        for i in range(k, len(decisions), threads):
            d = decisions[i]
            router.reward(d.event_id, quality=qualities[i], cost_usd=d.estimated_cost_usd,
                          latency_s=1.0, output_tokens=200, learn=False)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    t = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - t
    groups, held = writes.groups - groups, writes.writes - held
    return {"calls": len(decisions), "threads": threads, "per_s": len(decisions) / elapsed,
            "commits": groups, "writes_per_commit": held / groups}


def sqlite_commit_ms(folder: str, n: int) -> dict[str, float]:
    """The floor under every durable acknowledgement on this disk: one row inserted and
    committed by bare sqlite3, with the router's settings (WAL, ``synchronous=FULL``)."""
    import sqlite3

    con = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        con.execute("BEGIN")
        con.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        con.execute("COMMIT")
        ms.append(1000 * (time.perf_counter() - t))
    con.close()
    return percentiles(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="calls per measurement")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--embedder", choices=EMBEDDERS, default=DEFAULT_EMBEDDER,
                        help="the embedding runtime (default: the shipped one)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[10_000, 50_000, 100_000])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "router.json"),
                        help="where the figures go (JSON)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(args)}
    if args.database_url:  # no credentials in the results: the scheme only
        hidden = args.database_url.split(":", 1)[0] + "://..."
        result["machine"]["args"]["database_url"] = hidden
        result["machine"]["command"] = result["machine"]["command"].replace(
            shlex.quote(args.database_url), hidden)
    tmp = tempfile.TemporaryDirectory(prefix="bench-router-")
    with scratch_database(args.database_url or
                          f"sqlite:///{os.path.join(tmp.name, 'bench.db')}") as url:
        hot_path(args, url, tmp.name, result)
    tmp.cleanup()
    result["ivf_on_real_tasks"] = (ivf_on_real_tasks() if args.memory_sizes else
                                   {"skipped": "--memory-sizes empty"})
    write_json(args.out, result)


def hot_path(args: argparse.Namespace, url: str, folder: str, result: dict[str, Any]
             ) -> None:
    """Every figure of the first table, on the database at ``url`` (into ``result``)."""

    base_rss = rss_mb()
    minilm = make_embedder(args.embedder)
    t0 = time.perf_counter()
    minilm.embed(["load"])
    load_s = time.perf_counter() - t0
    router = Router(database_url=url, embedder=minilm, config=RouterConfig())
    result |= {"database": url.split(":", 1)[0].split("+")[0], "models": len(router.catalog),
               "calls": args.n, "embedder": args.embedder, "embedder_load_s": load_s,
               "rss_mb": {"start": base_rss, "loaded": rss_mb()}}
    print(f"bandit-router benchmark: {len(router.catalog)} models, database {url}")
    print(f"embedder load {load_s:.1f}s; RSS {base_rss:.0f} MB before, "
          f"{result['rss_mb']['loaded']:.0f} MB after loading the embedder, VW and FAISS")

    for text in prompts(50, seed=99):  # warm-up: code paths, SQLite pages
        router.select(text)

    decisions: list[Any] = []
    ms = time_selects(router, prompts(args.n, seed=1), decisions)
    result["select_ms"] = percentiles(ms)
    print(f"select(), real MiniLM embedding ({args.embedder}, cache misses): "
          f"{show(result['select_ms'])}")

    texts = prompts(args.n, seed=2)
    lookup = LookupEmbedder(texts, minilm.embed(texts), minilm.name)
    router.close()
    router = Router(database_url=url, embedder=lookup, config=RouterConfig())
    ms = time_selects(router, texts, decisions)
    result["select_no_embedding_ms"] = percentiles(ms)
    print(f"select(), embedding excluded:                  "
          f"{show(result['select_no_embedding_ms'])}")
    budgeted: list[Any] = []
    ms = [0.0] * len(texts)
    with four_budgets(router) as tenant:
        for i, text in enumerate(texts):
            t = time.perf_counter()
            budgeted.append(router.select(text, tenant=tenant))
            ms[i] = 1000 * (time.perf_counter() - t)
    result["select_four_budgets_ms"] = percentiles(ms)
    print(f"select(), embedding excluded, 4 budgets:       "
          f"{show(result['select_four_budgets_ms'])}")

    rng = np.random.default_rng(0)
    inline, behind = decisions[: len(decisions) // 2], decisions[len(decisions) // 2:]
    t = time.perf_counter()
    for d in inline:
        router.reward(d.event_id, quality=float(rng.random()), cost_usd=d.estimated_cost_usd,
                      latency_s=1.0, output_tokens=200)
    elapsed = time.perf_counter() - t
    result["reward"] = {"calls": len(inline), "per_s": len(inline) / elapsed,
                        "ms_each": 1000 * elapsed / len(inline)}
    print(f"reward(): {result['reward']['per_s']:,.0f} rewards/s "
          f"({result['reward']['ms_each']:.2f} ms each, commit + learn)")
    # the service's way: the reward is made durable and acknowledged; one learner catches up
    t = time.perf_counter()
    for d in behind:
        router.reward(d.event_id, quality=float(rng.random()), cost_usd=d.estimated_cost_usd,
                      latency_s=1.0, output_tokens=200, learn=False)
    acked = time.perf_counter() - t
    t = time.perf_counter()
    router.sync()
    caught_up = time.perf_counter() - t
    result["reward_learn_behind"] = {"calls": len(behind), "per_s": len(behind) / acked,
                                     "ms_each": 1000 * acked / len(behind),
                                     "learned_per_s": len(behind) / caught_up}
    print(f"reward(learn=False): {result['reward_learn_behind']['per_s']:,.0f} rewards/s "
          f"acknowledged durably; sync() then learned "
          f"{result['reward_learn_behind']['learned_per_s']:,.0f}/s")
    router.sync()
    many = [router.select(text) for text in texts]  # new decisions, at hand for their rewards
    together = result["reward_concurrent"] = concurrent_rewards(router, many, threads=8)
    router.sync()
    print(f"reward(learn=False) from {together['threads']} threads at once: "
          f"{together['per_s']:,.0f} rewards/s acknowledged durably, "
          f"{together['writes_per_commit']:.1f} writes a commit")
    if url.startswith("sqlite:///"):
        floor = result["sqlite_commit_ms"] = sqlite_commit_ms(folder, args.n)
        print(f"a bare durable SQLite commit on this disk: {show(floor)} "
              f"({1000 / floor['mean']:,.0f}/s one after another)")
    stats = router.get_routing_stats()
    result["rss_mb"]["end"] = rss_mb()
    result |= {"decisions": stats["decisions"], "rewarded": stats["rewarded"],
               "remembered_tasks": stats["remembered_tasks"]}
    print(f"after {stats['decisions']} decisions / {stats['rewarded']} rewards: "
          f"RSS {result['rss_mb']['end']:.0f} MB, memory rows {stats['remembered_tasks']}")
    router.close()
    result["recall"] = recall_scaling(args.memory_sizes, keys=[s.key for s in router.catalog])


def recall_scaling(sizes: Sequence[int], keys: list[str]) -> list[dict[str, Any]]:
    """Recall cost at larger histories, on the memory component itself (filling it through
    select/reward would take minutes per 100k): exact, and with the default IVF."""
    from bandit_router.core._memory import Memory

    rng = np.random.default_rng(0)
    rows = []
    print("\nrecall of the 32 nearest past tasks (FAISS inner product, 384-d, random unit "
          "vectors):")
    for n in sizes:
        vecs = rng.normal(size=(n, 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        queries = vecs[rng.integers(n, size=300)]
        for label, limit in (("exact", None), ("IVF", RouterConfig().exact_recall_limit)):
            before = rss_mb()
            # the default memory's shape (float vectors, 128 lists) at every size
            mem = Memory(dim=384, capacity=max(sizes), exact_limit=limit, compact=False,
                         lists=128)
            for i, v in enumerate(vecs):
                mem.add(v, keys[i % len(keys)], quality=float(rng.random()), reward=0.5,
                        cost_usd=1e-4, latency_s=1.0, output_tokens=200, seq=i + 1)
            ms = []
            for q in queries:
                t = time.perf_counter()
                mem.recall(q, keys, k=32)
                ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            blob = mem.to_bytes(vectors=False)  # as a checkpoint stores it
            snap_s = time.perf_counter() - t
            row: dict[str, Any] = {
                "tasks": n, "index": label, "queries": len(queries), "neighbours": 32,
                "recall_ms": percentiles(ms), "rss_mb": rss_mb() - before,
                "checkpoint_mb": len(blob) / 2**20,
                "checkpoint_s": snap_s}
            rows.append(row)
            print(f"  {n:>7,} tasks, {label:<5}: {show(row['recall_ms'])};  "
                  f"+{row['rss_mb']:5.0f} MB RSS, checkpoint {row['checkpoint_mb']:5.1f} MB "
                  f"in {snap_s:.3f}s")
            del mem, blob
    return rows


def ivf_on_real_tasks() -> dict[str, Any]:
    """How many of the exact 32 neighbours the IVF finds, on MiniLM vectors of real
    questions (the MMLU-Pro data, when it is there): 10,000 remembered, 200 new."""
    import faiss

    from bandit_router.core._memory import Memory
    from bandit_router.eval.datasets import default_data_dir, load_mmlu_pro

    try:
        ds = load_mmlu_pro(default_data_dir() / "mmlu_pro")
    except (FileNotFoundError, OSError) as exc:
        print(f"\nIVF recall on real tasks: skipped ({exc})")
        return {"skipped": str(exc)}
    assert ds.embeddings is not None
    x = np.ascontiguousarray(
        ds.embeddings[np.random.default_rng(0).permutation(len(ds))], np.float32)
    known, new = x[:10_000], x[-200:]
    mem = Memory(dim=x.shape[1], capacity=len(known))
    for v in known:
        mem.add(v, "p/m", quality=1.0, reward=1.0, cost_usd=0.0, latency_s=None,
                output_tokens=None)
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(known)
    _, want = exact.search(new, 32)
    _, got = mem._search(new, 32)
    overlap = exact_found(want, got)
    print(f"\nIVF on {len(known):,} MMLU-Pro questions (MiniLM): {100 * overlap:.1f}% of the "
          "exact 32 neighbours found")
    return {"dataset": "mmlu_pro", "remembered": len(known), "queries": len(new),
            "neighbours": 32, "exact_found": overlap}


if __name__ == "__main__":
    main()

"""Checkpoint size, write time and restart time against the number of remembered tasks.

Replays a dataset into a SQLite file (WAL, synchronous=FULL) through the real router, then
opens it again: the restart loads the newest checkpoint (memory vectors read back from the
log) and learns what came after. Then takes checkpoints of the restored router, and for
comparison writes its memory the way earlier releases did (every vector inside).

Uses MMLU-Pro's precomputed MiniLM vectors when the shared data is there
(``BANDIT_ROUTER_DATA``), else the built-in synthetic workload. Writes the figures, with the
machine they were measured on, to ``--out`` (``benchmarks/results/checkpoint.json``, which
``scripts/bench_doc.py`` renders into docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_checkpoint.py [--tasks 2000 10000] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _results import machine, write_json

from bandit_router import PolicyConfig, Router, RouterConfig
from bandit_router.core._learner import write_checkpoint
from bandit_router.eval.datasets import (
    PrecomputedEmbedder,
    RoutingDataset,
    default_data_dir,
    load_mmlu_pro,
    synthetic_dataset,
)
from bandit_router.eval.replay import replay


def dataset() -> RoutingDataset:
    try:
        return load_mmlu_pro(default_data_dir() / "mmlu_pro")
    except (FileNotFoundError, OSError):
        return synthetic_dataset(20_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--out",
                        default=str(Path(__file__).parent / "results" / "checkpoint.json"),
                        help="where the figures go (JSON)")
    args = parser.parse_args()
    ds = dataset()
    result: dict[str, Any] = {"machine": machine(args), "dataset": ds.name,
                              "models": len(ds.models), "rows": []}
    policy = PolicyConfig(seed=0, gamma_scale=50, embedding_dims=32)
    config = RouterConfig(cost_weight=12.0, reward_wait_s=1e9, embedding_cache_size=0)
    print(f"checkpoints on {ds.name}, {len(ds.models)} models, SQLite file\n"
          f"{'tasks':>7} | {'checkpoint':>10} {'write ms':>8} | {'with vectors':>12} "
          f"{'write ms':>8} | {'restart s':>9}")
    for n in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{os.path.join(tmp, 'bench.db')}"
            replay(ds, seed=0, cost_weight=12.0, policy=policy, config=config,
                   database_url=url, limit=n)
            embedder = (PrecomputedEmbedder(ds.texts, ds.embeddings)
                        if ds.embeddings is not None else None)
            start = time.perf_counter()
            router = Router(database_url=url, catalog=ds.catalog(quality_prior=0.5),
                            embedder=embedder, policy=policy, config=config)
            restart = time.perf_counter() - start
            learner = router._learner
            assert learner.learned == min(n, len(ds)) and learner.memory.logged
            times, size = [], 0
            for _ in range(3):
                start = time.perf_counter()
                snap = learner.snapshot()
                write_checkpoint(router.store, snap, time.time())
                times.append(time.perf_counter() - start)
                size = len(snap.policy) + len(snap.memory.to_bytes())
            olds = []
            for _ in range(3):  # the memory with its vectors, as earlier releases wrote it
                start = time.perf_counter()
                vw, memory = learner.policy.to_bytes(), learner.memory.copy_out()
                write_checkpoint(router.store, replace(snap, policy=vw, memory=memory),
                                 time.time())
                olds.append(time.perf_counter() - start)
                full = len(vw) + len(memory.to_bytes())
            router.close()
        row = {"tasks": min(n, len(ds)), "checkpoint_mb": size / 1e6,
               "write_ms": 1e3 * min(times), "with_vectors_mb": full / 1e6,
               "with_vectors_write_ms": 1e3 * min(olds), "restart_s": restart}
        result["rows"].append(row)
        print(f"{row['tasks']:>7,} | {row['checkpoint_mb']:>7.2f} MB {row['write_ms']:>8.1f} | "
              f"{row['with_vectors_mb']:>9.2f} MB {row['with_vectors_write_ms']:>8.1f} | "
              f"{restart:>9.2f}")
    print("(write: the snapshot under the lock, its hash and the insert, best of 3; with "
          "vectors: the same with the memory's vectors inside, as earlier releases wrote it)")
    write_json(args.out, result)


if __name__ == "__main__":
    main()

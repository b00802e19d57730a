"""What full information reaches on the protocol's data sets: the ceilings a bandit learner
approaches from below.

For each seed, the tasks are split in two halves by a seeded permutation (as a replay orders
them); routers fitted on the first half with *every* model's outcome are scored on the
second:

- the best single model (chosen on the first half);
- per cluster: k-means on the first 1,000 tasks (as the router fits its codebooks), each
  cluster sent to its best model on the first half;
- kNN: each task sent to the model with the best mean quality among its k nearest first-half
  tasks (the router's neighbour estimate, with full information);
- each again fitted on only as many outcomes as bandit feedback reveals over the first half
  (one per round: the first ``1/models`` of it, with every model's outcome).

    BANDIT_ROUTER_DATA=../shared/data .venv/bin/python benchmarks/bench_ceilings.py \\
        [--seeds 0 1 2] [--out benchmarks/results/ceilings.json]

The cost weight is left out: on RouterDC-7 every model costs the same, and on MMLU-Pro the
question here is quality at any cost.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bandit_router.eval import protocol
from bandit_router.eval.baselines import supervised
from bandit_router.eval.datasets import RoutingDataset


def ceilings(ds: RoutingDataset, seed: int) -> dict[str, float]:
    """Each router's quality on the second half, fitted on the whole first half; then again
    fitted on the first ``1/models`` of it (``[as many outcomes]``): as many outcomes as
    bandit feedback reveals over the first half, one per round, but every model's on each
    task instead of the one chosen."""
    from bandit_router.core._clusters import TaskClusters

    assert ds.embeddings is not None
    perm = np.random.default_rng(seed).permutation(len(ds))
    half = len(ds) // 2
    test = perm[half:]
    out: dict[str, float] = {}
    for train, suffix in ((perm[:half], ""),
                          (perm[:half // len(ds.models)], " [as many outcomes]")):
        out["best single model" + suffix] = float(ds.quality[test, int(np.argmax(
            ds.quality[train].mean(axis=0)))].mean())
        for k in (4, 8, 16):
            book = TaskClusters.fit(ds.embeddings[train[:1000]], sizes=(k,), seed=seed)
            label = np.argmax(ds.embeddings @ book.codebooks[0].T, axis=1)
            best = {c: int(np.argmax(ds.quality[train][label[train] == c].mean(axis=0)))
                    for c in range(k) if np.any(label[train] == c)}
            picks = np.array([best.get(int(c), 0) for c in label[test]])
            out[f"best model per cluster (k-means {k})" + suffix] = float(
                ds.quality[test, picks].mean())
        for k in (32, 128):
            picks = supervised(ds, train, test, cost_weight=0.0, k=k)
            out[f"kNN, k={k}" + suffix] = float(ds.quality[test, picks].mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, dict[str, list[float]]] = {}
    for w in protocol.workloads():
        if w.name not in ("mmlu_pro", "routerdc7"):
            continue
        ds = w.load()
        if ds.embeddings is None:
            ds = protocol.with_embeddings(ds)
        rows = [ceilings(ds, seed) for seed in args.seeds]
        result[w.name] = {name: [r[name] for r in rows] for name in rows[0]}
        print(f"{w.name} (second half of {len(ds):,} tasks, seeds {args.seeds}):")
        for name, values in result[w.name].items():
            print(f"  {name:<60} {np.mean(values):.4f}  ({min(values):.4f}-{max(values):.4f})")
    if args.out:
        args.out.write_text(json.dumps({"seeds": args.seeds, "ceilings": result}, indent=1)
                            + "\n")


if __name__ == "__main__":
    main()

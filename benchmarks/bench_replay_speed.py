"""Replay speed, cold and warm: how many rounds a second a replay of MMLU-Pro runs.

The shipped defaults, the dataset's MiniLM vectors, the 13 priced chat models, cost weight
20, the report seeds, two replays at a time in forked processes (as the quality table's
column is measured). *Cold*: every question replayed with bandit feedback only. *Warm*: a
share of the questions (``--warm``, 20%) first given to ``Router.warm_start`` with every
model's outcome, the rest replayed. Rounds per second count the replayed rounds only (a
select and its reward each); the warm start's own time is written beside it.

    BANDIT_ROUTER_DATA=../shared/data .venv/bin/python benchmarks/bench_replay_speed.py \\
        [--seeds 100 101 102] [--warm 0.2] [--jobs 2] [--tasks N] [--out PATH]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import machine, write_json

from bandit_router.eval.datasets import RoutingDataset, default_data_dir, load_mmlu_pro
from bandit_router.eval.protocol import REPORT_SEEDS, _one_thread  # (the workers' OpenMP rule)
from bandit_router.eval.replay import replay

#: The dataset, set before the workers fork (they inherit it instead of receiving a copy).
_DATASET: list[RoutingDataset] = []


def one_replay(job: tuple[str, int, float, float]) -> dict[str, Any]:
    mode, seed, warm, cost_weight = job
    start = time.perf_counter()
    result = replay(_DATASET[0], seed=seed, cost_weight=cost_weight,
                    warm_start=warm if mode == "warm" else 0.0)
    total = time.perf_counter() - start
    return {"mode": mode, "seed": seed, "rounds": len(result.order),
            "warm_tasks": len(_DATASET[0]) - len(result.order),
            "seconds": result.seconds, "rounds_per_s": result.rounds_per_s,
            # the warm start, the router's opening and closing: everything but the rounds
            "other_s": total - result.seconds}


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per mode: the median, lowest and highest rounds per second."""
    out = {}
    for mode in ("cold", "warm"):
        speeds = [r["rounds_per_s"] for r in runs if r["mode"] == mode]
        if speeds:
            out[mode] = {"median": statistics.median(speeds), "min": min(speeds),
                         "max": max(speeds)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=list(REPORT_SEEDS))
    parser.add_argument("--warm", type=float, default=0.2,
                        help="share of the questions given with every outcome first")
    parser.add_argument("--cost-weight", type=float, default=20.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=None,
                        help="a seeded sample of this many questions (default: all)")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "replay_speed.json"))
    args = parser.parse_args()
    if not 0.0 < args.warm < 1.0:
        parser.error("--warm must be in (0, 1)")
    ds = load_mmlu_pro((args.data or default_data_dir()) / "mmlu_pro")
    if args.tasks is not None:
        ds = ds.subset(np.sort(np.random.default_rng(0).permutation(len(ds))[:args.tasks]))
    _DATASET[:] = [ds]
    jobs = [(mode, seed, args.warm, args.cost_weight)
            for mode in ("cold", "warm") for seed in args.seeds]
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs, _one_thread) as pool:
            runs = pool.map(one_replay, jobs, chunksize=1)
    else:
        runs = [one_replay(job) for job in jobs]
    for r in runs:
        print(f"{r['mode']:>4} seed {r['seed']}: {r['rounds']:,} rounds, "
              f"{r['rounds_per_s']:,.0f} rounds/s ({r['other_s']:.1f} s besides, "
              f"{r['warm_tasks']:,} tasks warm)")
    result = {"machine": machine(args), "dataset": "mmlu_pro", "cost_weight": args.cost_weight,
              "warm": args.warm, "jobs": args.jobs, "runs": runs, "summary": summary(runs)}
    write_json(args.out, result)
    print({mode: round(s["median"]) for mode, s in result["summary"].items()})


if __name__ == "__main__":
    main()

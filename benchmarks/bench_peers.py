"""The router against the bandit libraries people would otherwise use, on one problem.

``../shared/bench/peer_bench.py`` (``--peer-bench``) builds a synthetic routing problem
(20,000 rounds, 6 priced arms, 384-d contexts around 8 topics; reward = Bernoulli(quality) -
0.3 x price / max price) and runs it online through river, mabwiser, contextualbandits, Open
Bandit Pipeline and plain Vowpal Wabbit. This script runs the same problem (same generator,
same seeds, same pre-drawn outcomes) through the router itself, as a user gets it:
``replay()`` of a ``RoutingDataset`` whose tasks carry the problem's contexts as their
embeddings, whose quality is the pre-drawn success and whose cost makes the router's reward
(cost weight 20) the problem's reward. It then runs the peers with the Python of the
environment they are installed in (``--peers-python``; see the peer bench's README), and
prints one table: cumulative regret against the per-round oracle (mean and worst of the
seeds) and rounds/s. Writes ``benchmarks/results/peers.json``.

    .venv/bin/python benchmarks/bench_peers.py --peers-python .venv-peers/bin/python \\
        [--seeds 0 1 2] [--n 20000] [--peers river_linucb vw_squarecb ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from _results import machine, write_json

HERE = Path(__file__).resolve().parent
COST_WEIGHT = 20.0
#: the peers run by default: every library's best learner in the peer bench's last table
#: that runs 20,000 rounds in minutes (mabwiser per round: 116 rounds/s, left out)
PEERS = ["river_linucb", "vw_squarecb", "vw_squarecb_p32", "cb_linucb",
         "mabwiser_linucb_b100", "obp_linucb"]


def peer_bench(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_bench", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no peer bench at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def router_run(pb: ModuleType, n: int, seed: int) -> dict[str, Any]:
    """The problem through ``replay()``: the router with its shipped defaults."""
    from bandit_router import PolicyConfig
    from bandit_router.eval.datasets import RoutingDataset
    from bandit_router.eval.replay import replay

    prob = pb.make_problem(n, seed)
    k = pb.K
    cost = np.tile(pb.LAMBDA * pb.NCOST / COST_WEIGHT, (n, 1))  # W x cost = 0.3 x ncost
    models = [f"peer/arm{j}" for j in range(k)]
    dataset = RoutingDataset(
        name="peer", task_ids=[str(i) for i in range(n)],
        texts=[f"peer task {i}" for i in range(n)], models=models,
        quality=prob["SUCC"], cost=cost, latency=np.ones((n, k)),
        output_tokens=np.full((n, k), 1000, np.int64), input_tokens=np.ones(n, np.int64),
        embeddings=prob["X"].astype(np.float32),
        # every call is exactly its cost: the router's estimate is the outcome's
        prices={m: (0.0, 1000.0 * c) for m, c in zip(models, cost[0], strict=True)})
    result = replay(dataset, seed=seed, cost_weight=COST_WEIGHT, policy=PolicyConfig(seed=seed))
    mu = prob["MU"][result.order]
    chosen = result.chosen
    rounds = np.arange(len(chosen))
    regret = float((mu.max(axis=1) - mu[rounds, chosen]).sum())
    last = slice(max(0, len(chosen) - 5000), None)
    optimal = float((mu.argmax(axis=1)[last] == chosen[last]).mean())
    return {"name": "bandit-router (Router defaults, replay)", "seed": seed, "rounds": n,
            "cum_pseudo_regret": regret, "frac_opt_last5k": optimal,
            "rounds_per_s": n / result.seconds}


def peer_runs(python: str, path: Path, names: list[str], n: int,
              seed: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peers.jsonl"
        subprocess.run([python, str(path), "--learners", ",".join(names), "--n", str(n),
                        "--seed", str(seed), "--out", str(out), "--arms_dir",
                        str(Path(tmp) / "arms")], check=True, cwd=tmp)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    return [{"name": r["name"], "seed": seed, "rounds": r["rounds"],
             "cum_pseudo_regret": r["cum_pseudo_regret"],
             "frac_opt_last5k": r["frac_opt_last5k"],
             "rounds_per_s": r["rounds_per_s"] if r["wall_s"] > 0 else None,
             "completed": r["completed"]} for r in rows]


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by.setdefault(run["name"], []).append(run)
    rows = []
    for name, group in by.items():
        regrets = [r["cum_pseudo_regret"] for r in group]
        speeds = [r["rounds_per_s"] for r in group if r["rounds_per_s"] is not None]
        rows.append({"name": name, "seeds": [r["seed"] for r in group],
                     "regret_mean": statistics.mean(regrets), "regret_worst": max(regrets),
                     "frac_opt_last5k": statistics.mean(r["frac_opt_last5k"] for r in group),
                     "rounds_per_s": statistics.median(speeds) if speeds else None})
    return sorted(rows, key=lambda r: r["regret_mean"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-bench",
                        default=os.environ.get("BANDIT_ROUTER_PEER_BENCH",
                                               str(HERE.parent.parent / "shared" / "bench"
                                                   / "peer_bench.py")))
    parser.add_argument("--peers-python", default=None,
                        help="the Python of an environment with the peers installed "
                             "(without it, only the router runs)")
    parser.add_argument("--peers", nargs="*", default=PEERS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--out", default=str(HERE / "results" / "peers.json"))
    args = parser.parse_args()
    bench = Path(args.peer_bench)
    pb = peer_bench(bench)
    runs = []
    for seed in args.seeds:
        run = router_run(pb, args.n, seed)
        print(json.dumps(run), flush=True)
        runs.append(run)
        if args.peers_python and args.peers:
            for peer in peer_runs(args.peers_python, bench, args.peers, args.n, seed):
                print(json.dumps(peer), flush=True)
                runs.append(peer)
    rows = summary(runs)
    print(f"\n{'learner':48} {'regret mean':>11} {'worst':>8} {'optimal, last 5k':>16} "
          f"{'rounds/s':>9}")
    for row in rows:
        speed = "" if row["rounds_per_s"] is None else f"{row['rounds_per_s']:,.0f}"
        print(f"{row['name']:48} {row['regret_mean']:11.0f} {row['regret_worst']:8.0f} "
              f"{row['frac_opt_last5k']:16.3f} {speed:>9}")
    write_json(args.out, {"machine": machine(args), "runs": runs, "summary": rows})


if __name__ == "__main__":
    main()

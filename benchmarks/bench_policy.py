"""The policy alone: VW's decision and learning per request, by embedding size.

13 actions shaped like the router's (model, provider and the cost-aware numbers), a
random unit vector as the task embedding, task features and two cluster ids; each round
decides (keeping its memo, as the router does) and learns the reward of the action drawn.
Prints microseconds per decision (``decide``: formatting, parsing and VW's prediction) and per
reward (``learn``), medians of ``--repeats`` runs, and writes them with the machine they
were measured on to ``--out`` (``benchmarks/results/policy.json``, which
``scripts/bench_doc.py`` renders into docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_policy.py [--rounds 3000] [--dims 32 384] \\
        [--optimism 0.2] [--gamma-scale 400] [--baseline-strength 10] [--out PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import machine, write_json

from bandit_router import Exploration, PolicyConfig, implied_exploration
from bandit_router.core._scoring import BASELINE, CROSSED_ONLY, PINNED
from bandit_router.core.policies import VWPolicy

ACTIONS = 13  # as many as the MMLU-Pro catalog's models




def _exploration(args: argparse.Namespace) -> Exploration:
    """squareCB when one of its options is given, else the default (the library's rule)."""
    return implied_exploration(None, optimism=args.optimism,
                               baseline_strength=args.baseline_strength)


def one_run(dims: int | None, args: argparse.Namespace, seed: int) -> tuple[float, float]:
    policy = VWPolicy(PolicyConfig(seed=seed, exploration=_exploration(args),
                                   gamma_scale=args.gamma_scale,
                                   optimism=args.optimism, embedding_dims=dims,
                                   baseline_strength=args.baseline_strength),
                      input_dim=384, pinned=PINNED, crossed_only=CROSSED_ONLY, baseline=BASELINE)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((args.rounds, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    actions = [{"M": {f"model-{j}": 1.0}, "P": {f"provider-{j % 4}": 1.0},
                "A": {"cost": 0.01 * j, "latency": 0.0, "quality": 0.5, "evidence": 0.3},
                "Q": {"quality": 0.5, "evidence": 0.3}}
               for j in range(ACTIONS)]
    task = {"chars": 0.5, "words": 0.4, "lines": 0.2, "code": 0.0, "math": 1.0,
            "question": 1.0, "translate": 0.0, "summarise": 0.0, "digits": 0.01}
    decide = learn = 0.0
    for k in range(args.rounds):
        context = {"E": vectors[k], "T": task, "K": {f"c4_{k % 4}": 1.0, f"c16_{k % 16}": 1.0}}
        draw = float(rng.random())
        start = time.perf_counter()
        i, p, _, memo = policy.decide(context, actions, draw=draw)
        middle = time.perf_counter()
        before = time.perf_counter()
        policy.learn(context, actions, i, float(rng.random()), p, memo=memo)
        learn += time.perf_counter() - before
        decide += middle - start
    policy.close()
    return decide / args.rounds * 1e6, learn / args.rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[32, 384],
                        help="embedding dimensions the policy sees (384: no projection)")
    parser.add_argument("--optimism", type=float, default=0.2)
    parser.add_argument("--gamma-scale", type=float, default=400.0)
    parser.add_argument("--baseline-strength", type=float, default=10.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "policy.json"),
                        help="where the figures go (JSON)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(args), "actions": ACTIONS, "rounds": args.rounds,
                              "repeats": args.repeats, "exploration": _exploration(args),
                              "rows": []}
    print(f"VWPolicy, 13 actions, {args.rounds} rounds, optimism {args.optimism}, "
          f"baseline strength {args.baseline_strength:g}, "
          f"gamma_scale {args.gamma_scale:g}; median of {args.repeats} runs")
    print("   dims | decide µs/decision | learn µs/reward")
    for dims in args.dims:
        runs = [one_run(None if dims == 384 else dims, args, seed)
                for seed in range(args.repeats)]
        row = {"dims": dims, "decide_us": statistics.median(r[0] for r in runs),
               "learn_us": statistics.median(r[1] for r in runs),
               "per_run": [{"seed": seed, "decide_us": r[0], "learn_us": r[1]}
                           for seed, r in enumerate(runs)]}
        result["rows"].append(row)
        print(f"{dims:>7} | {row['decide_us']:>15.0f} | {row['learn_us']:>15.0f}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()

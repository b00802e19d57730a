"""Routing quality on the built-in simulated workload, over several seeds.

Streams ``--rounds`` tasks (six topics; each topic has its own best model once cost counts)
through the real router: real MiniLM, real VW, a SQLite file. Only the chosen model's outcome
is revealed. Prints, over the last ``--last`` rounds and over the whole stream: how often the
router picked the per-topic best model, and the expected reward, quality and cost of its
choices against random, always-cheapest, always-strongest and the per-topic oracle.

    .venv/bin/python benchmarks/bench_learning.py [--seeds 0 1 2] [--rounds 3000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bandit_router import CachedEmbedder, Objective, PolicyConfig, Router, RouterConfig
from bandit_router import SentenceTransformerEmbedder as MiniLM
from bandit_router.eval.simulation import SyntheticWorkload, demo_catalog


def _squarecb_if_asked(policy: dict[str, Any]) -> dict[str, Any]:
    """squareCB when one of its options is set, else the default exploration."""
    if policy.get("optimism") or policy.get("baseline_strength"):
        return {"exploration": "squarecb", **policy}
    return policy


def run(seed: int, rounds: int, last: int, lam: float, embedder: CachedEmbedder,
        policy: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    wl = SyntheticWorkload(seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        router = Router(database_url=f"sqlite:///{os.path.join(tmp, 'b.db')}",
                        catalog=demo_catalog(), embedder=embedder,
                        policy=PolicyConfig(seed=seed, **_squarecb_if_asked(policy)),
                        config=RouterConfig(cost_weight=lam, **config))
        topics, picks = [], []
        t0 = time.perf_counter()
        for k in range(rounds):
            task = wl.sample_task()
            # named events: the exploration draws, hence the whole run, repeat for a seed
            d = router.select(task.text, event_id=f"bench-{seed}-{k}")
            key = f"{d.provider}/{d.model}"
            o = wl.outcome(task, key)
            router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd,
                          latency_s=o.latency_s, output_tokens=o.output_tokens)
            topics.append(task.topic)
            picks.append(key)
        elapsed = time.perf_counter() - t0
        router.close()

    def summary(sl: slice) -> dict[str, Any]:
        ts, ps = topics[sl], picks[sl]

        def q(chooser: Callable[[str, str], str]) -> float:
            return float(np.mean([wl.mean_quality(t, chooser(t, p))
                                  for t, p in zip(ts, ps, strict=True)]))

        def c(chooser: Callable[[str, str], str]) -> float:
            return float(np.mean([wl.expected_cost(t, chooser(t, p))
                                  for t, p in zip(ts, ps, strict=True)]))

        strategies: dict[str, Callable[[str, str], str]] = {
            "router": lambda t, p: p,
            "cheapest": lambda t, p: wl.cheapest,
            "strongest": lambda t, p: wl.strongest,
            "oracle": lambda t, p: wl.best_model(t, lam),
        }
        objective = Objective(lam)
        out: dict[str, Any] = {name: (q(f), c(f), objective.reward(q(f), c(f)))
                               for name, f in strategies.items()}
        rq = float(np.mean([[wl.mean_quality(t, k) for k in wl.keys] for t in ts]))
        rc = float(np.mean([[wl.expected_cost(t, k) for k in wl.keys] for t in ts]))
        out["random"] = (rq, rc, objective.reward(rq, rc))
        out["best_rate"] = np.mean([p == wl.best_model(t, lam)
                                    for t, p in zip(ts, ps, strict=True)])
        return out

    return {"last": summary(slice(-last, None)), "all": summary(slice(None)),
            "rounds_per_s": rounds / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--last", type=int, default=1000)
    parser.add_argument("--cost-weight", type=float, default=50.0)
    parser.add_argument("--gamma-scale", type=float, default=PolicyConfig().gamma_scale)
    parser.add_argument("--embedding-dims", type=int, default=PolicyConfig().embedding_dims)
    parser.add_argument("--optimism", type=float, default=PolicyConfig().optimism)
    parser.add_argument("--baseline-strength", type=float,
                        default=PolicyConfig().baseline_strength)
    parser.add_argument("--interactions", nargs="+", default=list(PolicyConfig().interactions))
    parser.add_argument("--task-clusters", type=int, nargs="*",
                        default=list(RouterConfig().task_clusters),
                        help="k-means codebook sizes; none: no clusters")
    args = parser.parse_args()
    embedder = CachedEmbedder(MiniLM(), size=100_000)
    policy = {"gamma_scale": args.gamma_scale, "embedding_dims": args.embedding_dims,
              "optimism": args.optimism, "baseline_strength": args.baseline_strength,
              "interactions": tuple(args.interactions)}
    config = {"task_clusters": tuple(args.task_clusters)}
    print(f"policy {policy}, clusters {config['task_clusters']}")
    results = [run(s, args.rounds, args.last, args.cost_weight, embedder, policy, config)
               for s in args.seeds]
    print(f"built-in workload, {args.rounds} rounds, cost weight {args.cost_weight:g}/USD, "
          f"seeds {args.seeds}; expected values of each strategy's choices")
    for part, label in (("last", f"last {args.last} rounds"), ("all", "whole stream")):
        print(f"\n{label}: best-model rate "
              + ", ".join(f"{r[part]['best_rate']:.3f}" for r in results)
              + f" (mean {np.mean([r[part]['best_rate'] for r in results]):.3f}; "
              f"chance {1 / 5:.2f})")
        print(f"  {'strategy':<10} {'quality':>8} {'$ / 1k req':>11} {'reward':>8}")
        for name in ("router", "random", "cheapest", "strongest", "oracle"):
            q, c, r = (np.mean([res[part][name][i] for res in results]) for i in range(3))
            print(f"  {name:<10} {q:8.3f} {1000 * c:11.4f} {r:8.3f}")
        rq, rc = (np.mean([res[part]["router"][i] for res in results]) for i in range(2))
        sq, sc = (np.mean([res[part]["strongest"][i] for res in results]) for i in range(2))
        print(f"  router vs always-strongest: {100 * rq / sq:.1f}% of its quality at "
              f"{100 * rc / sc:.1f}% of its cost")
    print("\nrounds per second (select + reward, MiniLM cached after first sight): "
          + ", ".join(f"{r['rounds_per_s']:.0f}" for r in results))


if __name__ == "__main__":
    main()

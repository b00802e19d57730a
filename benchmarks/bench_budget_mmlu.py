"""Spend control on the MMLU-Pro replay: quality and spend under a daily budget.

The 10,225 questions (13 priced chat models) arrive evenly over one UTC day, in a seeded
random order, bandit feedback only (precomputed MiniLM vectors). The router gets a daily
budget of 25%, 50% and 100% of what always-gpt-4o would spend on the stream, with
``pacing="target"`` (spend the budget over the day) and ``on_exceed="error"``. Each run is
compared with the best fixed mix of models that respects the same budget (the zero router's
hull at that mean cost: the best randomised mix of at most two models) and with always the
cheapest model. Refused requests count as quality 0 in "quality, all requests". Writes the
figures (means over the seeds, and each run's), with the machine they were measured on, to
``--out`` (``benchmarks/results/budget_mmlu.json``, which ``scripts/bench_doc.py`` renders into
docs/benchmarks.md).

    BANDIT_ROUTER_DATA=../shared/data .venv/bin/python benchmarks/bench_budget_mmlu.py \\
        [--shares 0.25 0.5 1.0] [--seeds 0 1 2] [--limit N] [--out PATH]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _results import machine, write_json

from bandit_router import BudgetExceededError, PolicyConfig, Router, RouterConfig
from bandit_router.eval.datasets import PrecomputedEmbedder, default_data_dir, load_mmlu_pro
from bandit_router.eval.replay import hull_quality, zero_router_hull

GPT4O = "gpt-4o-2024-05-13"



class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(share: float, seed: int, limit: int | None) -> dict[str, Any]:
    ds = load_mmlu_pro(default_data_dir() / "mmlu_pro")
    order = np.random.default_rng(seed).permutation(len(ds))[:limit]
    catalog = ds.catalog()
    keys = catalog.model_keys()
    column = {k: j for j, k in enumerate(keys)}
    gpt4o = next(j for j, k in enumerate(keys) if k.endswith(GPT4O))
    budget = share * float(ds.cost[order, gpt4o].sum())
    midnight = datetime(2027, 1, 4, tzinfo=UTC).timestamp()
    clock = _Clock(midnight)
    assert ds.embeddings is not None
    router = Router(database_url="sqlite://", catalog=catalog,
                    embedder=PrecomputedEmbedder(ds.texts, ds.embeddings),
                    policy=PolicyConfig(seed=seed), clock=clock,
                    config=RouterConfig(cost_weight=20.0, reward_wait_s=1e9,
                                        embedding_cache_size=0,
                                        maintenance_on_request=False))
    router.set_budget(daily_limit=budget, pacing="target", on_exceed="error")
    step = 86_400.0 / len(order)
    spent, qualities, refused = 0.0, [], 0
    lambdas = []
    started = time.perf_counter()
    for k, i in enumerate(order):
        clock.now = midnight + k * step
        try:
            d = router.select(ds.texts[i], event_id=f"b{seed}-{k}",
                              input_tokens=int(ds.input_tokens[i])
                              if ds.input_tokens is not None else None)
        except BudgetExceededError:
            refused += 1
            qualities.append(0.0)
            continue
        j = column[f"{d.provider}/{d.model}"]
        router.reward(d.event_id, quality=float(ds.quality[i, j]),
                      cost_usd=float(ds.cost[i, j]), latency_s=float(ds.latency[i, j]))
        spent += float(ds.cost[i, j])
        qualities.append(float(ds.quality[i, j]))
        lambdas.append(d.cost_weight)
    elapsed = time.perf_counter() - started
    router.close()
    mean_cost = ds.cost[order].mean(axis=0)
    mean_quality = ds.quality[order].mean(axis=0)
    hull = zero_router_hull(mean_cost.tolist(), mean_quality.tolist())
    cheapest = int(np.argmin(mean_cost))
    return {"seed": seed, "budget": budget, "spent": spent,
            "quality": float(np.mean(qualities)),
            "refused": refused, "tasks": len(order),
            "best_fixed_mix": hull_quality(hull, budget / len(order)),
            "always_cheapest": float(mean_quality[cheapest]),
            "always_gpt4o": float(mean_quality[gpt4o]),
            "cost_weight_p50": float(np.median(lambdas)) if lambdas else None,
            "rounds_per_s": len(order) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out",
                        default=str(Path(__file__).parent / "results" / "budget_mmlu.json"),
                        help="where the figures go (JSON)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(args), "seeds": args.seeds, "rows": []}
    print("MMLU-Pro under a daily budget (share of always-gpt-4o's spend), pacing='target', "
          f"seeds {args.seeds}")
    print(f"{'budget':>7} | {'spent/budget':>12} {'quality':>8} {'refused':>8} | "
          f"{'best fixed mix':>14} {'cheapest':>8} {'gpt-4o':>7} | {'λ p50':>7} rounds/s")
    for share in args.shares:
        rows = [run(share, seed, args.limit) for seed in args.seeds]

        def avg(name: str, rows: list[dict[str, Any]] = rows) -> float:
            values = [r[name] for r in rows if r[name] is not None]
            return float(np.mean(values)) if values else float("nan")

        row = {"share": share, "tasks": rows[0]["tasks"],
               "spent_share": avg("spent") / avg("budget"),
               **{k: avg(k) for k in ("budget", "spent", "quality", "refused", "best_fixed_mix",
                                      "always_cheapest", "always_gpt4o", "cost_weight_p50",
                                      "rounds_per_s")},
               "per_seed": rows}
        print(f"{share:>7.0%} | {row['spent_share']:>12.3f} {row['quality']:>8.4f} "
              f"{row['refused']:>8.0f} | {row['best_fixed_mix']:>14.4f} "
              f"{row['always_cheapest']:>8.4f} {row['always_gpt4o']:>7.4f} | "
              f"{row['cost_weight_p50']:>7.2f} {row['rounds_per_s']:>7.0f}")
        if np.isnan(row["cost_weight_p50"]):
            row["cost_weight_p50"] = None  # every request refused: no cost weight was used
        result["rows"].append(row)
    write_json(args.out, result)


if __name__ == "__main__":
    main()

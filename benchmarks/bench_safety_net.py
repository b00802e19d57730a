"""The safety net issue #15 proposes, measured on the router's own logs before it is built:
serve the fixed model whose off-policy estimate beats the router's, with a confidence
interval, switching only on evidence.

Each run replays a workload through the shipped router (``replay()``: cold start, bandit
feedback, the protocol's workloads, weights and seeds), then reads the router's log as such
a net would, round by round from ``--burn`` on: for each model *j*, the paired difference
between always-*j* and the router over the last ``--window`` rounds, from the logged choices
and their probabilities (per round ``r * 1[a = j] / p - r``, an inverse-propensity estimate),
and its normal interval at ``--level``. At the first round where one model's interval lies
wholly above zero, the net would serve that model with probability ``1 - eps`` and the
router's draw otherwise, to the end. Its rounds from there are counted from the data set's
outcomes: optimistic where the switch was right (the router, served less, would learn from
fewer of its own choices) and pessimistic where it was wrong (a net would switch back once
the evidence turned, after about as long again). Beside it, the ceiling of any such net:
the model best in hindsight on the last half, served the same way from ``--burn`` on.
Figures: the last half against the zero router's hull at the run's cost (the protocol's
column) and against the best fixed model's reward.

    BANDIT_ROUTER_DATA=../shared/data .venv/bin/python benchmarks/bench_safety_net.py \\
        [--seeds 0 1 2 3 4 5] [--workloads routerdc7 mmlu_pro-2000 ...] [--levels 0.95 0.99]
        [--window 1000] [--burn 300] [--eps 0.1] [--jobs 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _results import machine, write_json

from bandit_router import Objective, PolicyConfig
from bandit_router.eval.offpolicy import Z
from bandit_router.eval.protocol import (
    DEV_SEEDS,
    Workload,
    _one_thread,  # (the workers' OpenMP rule)
    variant_workloads,
    with_embeddings,
    workloads,
)
from bandit_router.eval.replay import hull_quality, replay, zero_router_hull

Array = npt.NDArray[np.float64]

#: the workloads run by default, at the protocol's own weights: those where the router is
#: under its hull on some seed (the net's purpose), and those where it is above (its cost)
DEFAULT_WORKLOADS = ("routerdc7", "mmlu_pro-2000", "routerdc7-priced-2000", "mmlu_pro",
                     "synthetic", "drift-quality", "drift-price")

#: The loaded workloads, set before the workers fork (they inherit them).
_LOADED: dict[str, tuple[Workload, Any]] = {}


def first_evidence(reward: Array, chosen: npt.NDArray[np.int64], probability: Array,
                   n_models: int, *, window: int, burn: int, level: float
                   ) -> tuple[int, int] | None:
    """The first round ``t >= burn`` (before the last) at which, over the rounds
    ``[t - window, t)``, some model's inverse-propensity estimate beats the router's own
    rewards with its interval at ``level`` wholly above zero: ``(t, model)`` (the model
    with the largest estimate among those), or ``None``.

    >>> rng = np.random.default_rng(0)
    >>> chosen = rng.integers(2, size=2000)          # a router choosing at random...
    >>> reward = np.where(chosen == 1, 0.9, 0.1)     # ...where model 1 is always better
    >>> first_evidence(reward, chosen, np.full(2000, 0.5), 2, window=500, burn=100,
    ...                level=0.95)
    (100, 1)
    """
    n = len(reward)
    if n < burn:
        return None
    # per round and model: always-j's inverse-propensity term less the router's reward
    terms = reward[:, None] * ((chosen[:, None] == np.arange(n_models)) / probability[:, None]
                               - 1.0)
    sums = np.vstack([np.zeros(n_models), np.cumsum(terms, axis=0)])
    squares = np.vstack([np.zeros(n_models), np.cumsum(terms * terms, axis=0)])
    ends = np.arange(max(burn, 2), n)  # (a switch at the last round would serve none)
    starts = np.maximum(0, ends - window)
    m = (ends - starts)[:, None]
    total = sums[ends] - sums[starts]
    mean = total / m
    var = np.maximum(squares[ends] - squares[starts] - total * mean, 0.0) / (m - 1)
    low = mean - Z[level] * np.sqrt(var / m)
    hits = np.flatnonzero((low > 0).any(axis=1))
    if not len(hits):
        return None
    k = int(hits[0])
    evident = np.where(low[k] > 0, mean[k], -np.inf)
    return int(ends[k]), int(np.argmax(evident))


def _outcomes(workload: Workload, ds: Any, order: npt.NDArray[np.int64]) -> tuple[Array, Array]:
    """Every model's quality and cost on each replayed round (after a drift, the changed)."""
    quality, cost = ds.quality[order].copy(), ds.cost[order].copy()
    if workload.drift is not None:
        k0 = workload.drift.start(len(order))
        q, c = workload.drift.apply(ds.quality, ds.cost, ds.models.index(workload.drift.model))
        quality[k0:], cost[k0:] = q[order[k0:]], c[order[k0:]]
    return quality, cost


def one_run(job: tuple[str, float, int, dict[str, Any]]) -> dict[str, Any]:
    name, lam, seed, opts = job
    workload, ds = _LOADED[name]
    result = replay(ds, seed=seed, cost_weight=lam, drift=workload.drift,
                    policy=PolicyConfig(seed=seed))
    n, chosen = len(result.order), result.chosen
    quality, cost = _outcomes(workload, ds, result.order)  # every model's, for the net's
    revealed_q, revealed_c = result.quality, result.cost   # what the router's rounds revealed
    objective = Objective(lam)
    half = slice(n // 2, None)
    rows = result.order[half]
    # the hull as the protocol draws it (the data set's outcomes); the best fixed model from
    # what the rounds revealed (after a drift, the changed outcomes)
    hull = zero_router_hull(ds.cost[rows].mean(axis=0).tolist(),
                            ds.quality[rows].mean(axis=0).tolist())
    fixed = objective.reward(quality[half], cost[half]).mean(axis=0)
    hindsight = int(np.argmax(fixed))
    eps = opts["eps"]

    def served_from(t0: int, model: int) -> dict[str, Any]:
        """The last half's figures when ``model`` is served from round ``t0`` on."""
        q, c = revealed_q.copy(), revealed_c.copy()
        q[t0:] = (1 - eps) * quality[t0:, model] + eps * q[t0:]
        c[t0:] = (1 - eps) * cost[t0:, model] + eps * c[t0:]
        mq, mc = float(q[half].mean()), float(c[half].mean())
        return {"vs_hull": mq - hull_quality(hull, mc),
                "vs_best_fixed": objective.reward(mq, mc) - float(fixed.max())}

    out: dict[str, Any] = {
        "workload": name, "cost_weight": lam, "seed": seed, "rounds": n,
        "router": served_from(n, 0), "hindsight_model": ds.models[hindsight],
        "ceiling": served_from(min(opts["burn"], n), hindsight), "nets": {}}
    for level in opts["levels"]:
        hit = first_evidence(objective.reward(revealed_q, revealed_c), chosen,
                             result.probability, len(ds.models), window=opts["window"],
                             burn=opts["burn"], level=level)
        out["nets"][str(level)] = (
            {"switched_at": None, **out["router"]} if hit is None else
            {"switched_at": hit[0], "model": ds.models[hit[1]],
             "hindsight_best": hit[1] == hindsight, **served_from(*hit)})
    return out


def summarise(runs: list[dict[str, Any]], levels: list[float]) -> list[dict[str, Any]]:
    """Per workload and weight: mean and worst seed of each strategy's figures."""
    keys = sorted({(r["workload"], r["cost_weight"]) for r in runs},
                  key=lambda k: (DEFAULT_WORKLOADS.index(k[0])
                                 if k[0] in DEFAULT_WORKLOADS else 99, k))
    out = []
    for name, lam in keys:
        group = [r for r in runs if (r["workload"], r["cost_weight"]) == (name, lam)]

        def stats(pick: Any, group: list[dict[str, Any]] = group) -> dict[str, float]:
            values = [pick(r)["vs_hull"] for r in group]
            return {"vs_hull_mean": float(np.mean(values)), "vs_hull_worst": min(values)}
        row: dict[str, Any] = {"workload": name, "cost_weight": lam, "seeds": len(group),
                               "router": stats(lambda r: r["router"]),
                               "ceiling": stats(lambda r: r["ceiling"])}
        for level in levels:
            key = str(level)
            row[f"net_{key}"] = {
                **stats(lambda r, key=key: r["nets"][key]),
                "switched": sum(r["nets"][key]["switched_at"] is not None for r in group),
                "to_hindsight_best": sum(bool(r["nets"][key].get("hindsight_best"))
                                         for r in group)}
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEV_SEEDS))
    parser.add_argument("--workloads", nargs="+", default=list(DEFAULT_WORKLOADS))
    parser.add_argument("--levels", type=float, nargs="+", default=[0.95, 0.99],
                        choices=sorted(Z))
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--burn", type=int, default=300)
    parser.add_argument("--eps", type=float, default=0.1,
                        help="the router's share of the rounds once the net has switched")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dev"
                                             / "safety-net-fixed-models-dev.json"))
    args = parser.parse_args()
    if args.window < 2 or args.burn < 1 or not 0.0 <= args.eps < 1.0:
        parser.error("--window must be at least 2, --burn at least 1, --eps in [0, 1)")
    known = {w.name: w for w in [*workloads(data_dir=args.data),
                                 *variant_workloads(data_dir=args.data)]}
    missing = [name for name in args.workloads if name not in known]
    if missing:
        parser.error(f"no data for {missing} (found: {sorted(known)})")
    for name in args.workloads:
        w = known[name]
        ds = w.load()
        if w.needs_embedding and ds.embeddings is None:
            ds = with_embeddings(ds)
        _LOADED[name] = (w, ds)
    opts = {"levels": args.levels, "window": args.window, "burn": args.burn, "eps": args.eps}
    jobs = [(name, float(lam), seed, opts) for name in args.workloads
            for lam in known[name].cost_weights for seed in args.seeds]
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs, _one_thread) as pool:
            runs = pool.map(one_run, jobs, chunksize=1)
    else:
        runs = [one_run(job) for job in jobs]
    summary = summarise(runs, args.levels)
    print(f"{'workload':24} {'weight':>6}  router vs hull (worst)  ceiling (worst)  "
          + "  ".join(f"net at {lv} (worst) switched/right" for lv in args.levels))
    for row in summary:
        cells = [f"{row['router']['vs_hull_mean']:+.4f} ({row['router']['vs_hull_worst']:+.4f})",
                 f"{row['ceiling']['vs_hull_mean']:+.4f} ({row['ceiling']['vs_hull_worst']:+.4f})"]
        for lv in args.levels:
            net = row[f"net_{lv}"]
            cells.append(f"{net['vs_hull_mean']:+.4f} ({net['vs_hull_worst']:+.4f}) "
                         f"{net['switched']}/{net['to_hindsight_best']}")
        print(f"{row['workload']:24} {row['cost_weight']:>6g}  " + "   ".join(cells))
    write_json(args.out, {"machine": machine(args), "seeds": args.seeds, "note": args.note,
                          "settings": {"overrides": {}}, "summary_by_workload": summary,
                          "runs": runs})


if __name__ == "__main__":
    main()

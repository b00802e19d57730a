"""Is the fixed-model report right? Its estimates against the truth, on replays where every
model's outcome is known.

Each run replays a workload through the shipped router (``replay()``: cold start, bandit
feedback) into a SQLite file, reads the log back with
:func:`bandit_router.eval.fixed.fixed_models` (what ``bandit-router report --fixed-models``
and ``GET /v1/admin/reports/fixed-models`` print), and sets each model's estimate of
always-it beside what always-it truly earned on the same requests (those where the router
gave it at least ``MIN_CHANCE``, read from the same log; the data set has every model's
outcome). Per model with at least ``MIN_ANSWERS`` answers: whether the interval covers the
truth, the error in standard errors, whether the verdict (better / worse than the router)
agrees with the true difference, and whether the fixed-model alert's rule names it
(:meth:`~bandit_router.eval.fixed.FixedModelsReport.beaten_by`, which
:func:`bandit_router.fixed_model_alerts` applies to a day; here to the whole replay), rightly
when its true difference is above zero.

    BANDIT_ROUTER_DATA=../shared/data .venv/bin/python benchmarks/bench_fixed_models.py \\
        [--workloads mmlu_pro routerdc7 synthetic] [--seeds 100 101 102] [--out PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _results import machine, write_json
from sqlalchemy import select

from bandit_router import Objective
from bandit_router.core._store import EventRow, RewardRow, Store
from bandit_router.eval.fixed import MIN_ANSWERS, MIN_CHANCE, fixed_models
from bandit_router.eval.offpolicy import Z
from bandit_router.eval.protocol import REPORT_SEEDS, _one_thread, with_embeddings, workloads
from bandit_router.eval.replay import replay

#: the weight each workload is replayed at (the protocol's middle weight for MMLU-Pro)
WEIGHTS = {"mmlu_pro": 20.0, "routerdc7": 20.0, "synthetic": 50.0}


def truth(store: Store, result: Any, cost_weight: float) -> dict[str, list[float]]:
    """Per model: always-it's true reward on each request where the router gave it at least
    ``MIN_CHANCE`` (the log's distribution; the data set's outcomes)."""
    ds = result.dataset
    column = {key: j for j, key in enumerate(ds.catalog().model_keys())}  # (as replay's)
    objective = Objective(cost_weight)
    out: dict[str, list[float]] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(select(EventRow.id, EventRow.actions, EventRow.pmf)
                            .join(RewardRow, RewardRow.event_id == EventRow.id)
                            .where(RewardRow.is_default.is_(False)))
        for event_id, actions, pmf in rows:
            task = int(result.order[int(event_id.rsplit("-", 1)[1])])
            for a, p in zip(actions, pmf, strict=True):
                if p >= MIN_CHANCE:
                    j = column[a["key"]]
                    out.setdefault(a["key"], []).append(float(objective.reward(
                        ds.quality[task, j], ds.cost[task, j])))
    return out


def one_run(workload: Any, ds: Any, seed: int, cost_weight: float, level: float
            ) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'log.db'}"
        result = replay(ds, seed=seed, cost_weight=cost_weight, database_url=url)
        store = Store(url)
        try:
            report = fixed_models(store, level=level)
            true = truth(store, result, cost_weight)
        finally:
            store.close()
    # the rule fixed_model_alerts applies, read over the whole replay rather than a day
    alerted = {r.model for r, _ in report.beaten_by()}
    out = []
    for row in report.rows:
        if row.chosen < MIN_ANSWERS:
            continue
        t = float(np.mean(true[row.model]))
        assert len(true[row.model]) == row.events  # the same requests
        se = (row.value.high - row.value.value) / Z[level]
        true_difference = t - row.router
        agrees = (row.verdict == "no evidence"
                  or (row.verdict == "better") == (true_difference > 0))
        out.append({"workload": workload.name, "seed": seed, "cost_weight": cost_weight,
                    "model": row.model, "events": row.events, "answers": row.chosen,
                    "estimate": row.value.value, "low": row.value.low,
                    "high": row.value.high, "truth": t,
                    "covered": bool(row.value.low <= t <= row.value.high),
                    "error_in_se": (row.value.value - t) / se if se > 0 else None,
                    "difference": row.difference.value,
                    "difference_low": row.difference.low,
                    "difference_high": row.difference.high,
                    "difference_covered": bool(row.difference.low <= true_difference
                                               <= row.difference.high),
                    "verdict": row.verdict, "true_difference": true_difference,
                    "verdict_agrees": bool(agrees), "alert": row.model in alerted})
        print(f"{workload.name} seed {seed}: {row.model:<45} {row.value.value:.4f} "
              f"[{row.value.low:.4f}, {row.value.high:.4f}] truth {t:.4f} "
              f"{row.verdict} (true difference {true_difference:+.4f})", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workloads", nargs="+", default=list(WEIGHTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(REPORT_SEEDS))
    parser.add_argument("--level", type=float, default=0.95, choices=sorted(Z))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "fixed_models.json"))
    args = parser.parse_args()
    _one_thread()
    found = {w.name: w for w in workloads(data_dir=args.data)}
    rows: list[dict[str, Any]] = []
    for name in args.workloads:
        if name not in found:
            print(f"{name}: no data here, skipped")
            continue
        w = found[name]
        ds = w.load()
        if w.needs_embedding and ds.embeddings is None:
            ds = with_embeddings(ds)
        for seed in args.seeds:
            rows += one_run(w, ds, seed, WEIGHTS.get(name, 20.0), args.level)
    judged = [r for r in rows if r["error_in_se"] is not None]
    verdicts = [r for r in rows if r["verdict"] != "no evidence"]
    summary = {
        "estimates": len(rows),
        "covered": sum(r["covered"] for r in rows),
        "coverage": float(np.mean([r["covered"] for r in rows])) if rows else None,
        "differences_covered": sum(r["difference_covered"] for r in rows),
        "largest_error_in_se": max((abs(r["error_in_se"]) for r in judged), default=None),
        "verdicts": len(verdicts),
        "verdicts_agreeing": sum(r["verdict_agrees"] for r in verdicts),
        "runs": len({(r["workload"], r["seed"]) for r in rows}),
        "runs_alerting": len({(r["workload"], r["seed"]) for r in rows if r["alert"]}),
        "alerts": sum(r["alert"] for r in rows),
        "alerts_right": sum(r["alert"] and r["true_difference"] > 0 for r in rows),
    }
    largest = summary["largest_error_in_se"]
    print(f"\n{summary['covered']} of {summary['estimates']} intervals ({args.level:.0%}) "
          f"cover always-that-model's truth and {summary['differences_covered']} its true "
          "difference from the router; largest error "
          + (f"{largest:.2f} standard errors" if largest is not None else "-")
          + f"; {summary['verdicts_agreeing']} of {summary['verdicts']} verdicts agree with "
          f"the true difference; the fixed-model alert in {summary['runs_alerting']} of "
          f"{summary['runs']} runs, {summary['alerts_right']} of its {summary['alerts']} "
          "models truly above the router")
    write_json(args.out, {"machine": machine(args), "level": args.level,
                          "min_chance": MIN_CHANCE, "min_answers": MIN_ANSWERS,
                          "weights": WEIGHTS, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()

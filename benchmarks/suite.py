"""The performance suite (issue #17): every figure beside its target, from the benchmarks' JSON.

Runs the parts asked for (each part is its own benchmark script, which writes
``benchmarks/results/NAME.json``), then reads every result file there is and prints one
table: figure, target, met. Writes the table to ``benchmarks/results/suite.json``. A figure
whose benchmark has not been run (or does not exist yet) says so.

    .venv/bin/python benchmarks/suite.py                      # the table from the files there
    .venv/bin/python benchmarks/suite.py --run embedder router http   # measure, then the table

The replay speed is read from the quality protocol's JSON (``bandit-router bench quality``,
two replays at a time on two cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _results import machine, write_json

from bandit_router import DEFAULT_EMBEDDER

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the parts ``--run`` knows: the script that measures each
PARTS = {"embedder": "bench_embedder.py", "router": "bench_router.py", "http": "bench_http.py",
         "policy": "bench_policy.py", "startup": "bench_startup.py",
         "replay_speed": "bench_replay_speed.py"}

Results = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One figure of the table: what it is, its target, and how to read it (``None`` when
    its result file is missing) and judge it."""

    figure: str
    target: str
    source: str
    read: Callable[[Results], tuple[str, bool | None] | None]


def _select(r: Results) -> tuple[str, bool] | None:
    router = r.get("router")
    if router is None:
        return None
    p = router["select_ms"]
    return (f"p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms ({router.get('embedder', 'torch')})",
            p["p50"] <= 6 and p["p99"] <= 15)


def _select_given(r: Results) -> tuple[str, bool] | None:
    """At every history size the start-up benchmark timed (its restored routers), else at
    the few thousand tasks of the router benchmark."""
    sizes = [s for s in r.get("startup", {}).get("sizes", []) if s.get("select_given_ms")]
    if sizes:
        figures = "; ".join(f"p50 {s['select_given_ms']['p50']:.2f} ms, p99 "
                            f"{s['select_given_ms']['p99']:.2f} ms at {s['tasks']:,}"
                            for s in sizes)
        return (f"{figures} remembered (restored from a checkpoint)",
                max(s["tasks"] for s in sizes) >= 1_000_000
                and all(s["select_given_ms"]["p50"] <= 0.5 and s["select_given_ms"]["p99"] <= 2
                        for s in sizes))
    router = r.get("router")
    if router is None:
        return None
    p = router["select_four_budgets_ms"]
    return (f"p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms at {router['remembered_tasks']:,} "
            "remembered",
            p["p50"] <= 0.5 and p["p99"] <= 2 and router["remembered_tasks"] >= 1_000_000)


def _reward(r: Results) -> tuple[str, bool] | None:
    router = r.get("router")
    if router is None:
        return None
    behind = router.get("reward_learn_behind")
    if behind is None:
        per_s = router["reward"]["per_s"]
        return f"{per_s:,.0f}/s (learning inline)", per_s >= 3000
    per_s = behind["per_s"]
    floor = router.get("sqlite_commit_ms")
    bound = ("" if floor is None else
             f"; a bare durable commit alone: {1000 / floor['mean']:,.0f}/s")
    together = router.get("reward_concurrent")
    if together is not None:  # callers at once share commits: the service's case
        return (f"{together['per_s']:,.0f}/s acknowledged from {together['threads']} threads "
                f"at once ({together['writes_per_commit']:.1f} a commit), learning behind; "
                f"one caller alone: {per_s:,.0f}/s{bound}", together["per_s"] >= 3000)
    return (f"{per_s:,.0f}/s acknowledged, learning behind ({router['reward']['per_s']:,.0f}/s "
            f"learning inline){bound}", per_s >= 3000)


def _reward_postgresql(r: Results) -> tuple[str, bool] | None:
    router = r.get("router_postgresql")
    if router is None:
        return None
    alone, together = router["reward_learn_behind"], router["reward_concurrent"]
    return (f"{together['per_s']:,.0f}/s acknowledged from {together['threads']} threads at "
            f"once ({together['writes_per_commit']:.1f} a commit), learning behind; one "
            f"caller alone: {alone['per_s']:,.0f}/s", together["per_s"] >= 5000)


def _http(r: Results) -> tuple[str, bool] | None:
    http = r.get("http")
    if http is None:
        return None
    best = max(http["runs"], key=lambda run: run["pairs_per_s"])
    return (f"{best['pairs_per_s']:.1f} pairs/s at {best['users']} users, select p99 "
            f"{best['select_ms']['p99']:.0f} ms",
            best["pairs_per_s"] >= 250 and best["select_ms"]["p99"] <= 100)


def _beyond_embedding(r: Results) -> tuple[str, bool] | None:
    http = r.get("http")
    runs = [run for run in (http or {}).get("runs", []) if "beyond_embedding_ms" in run]
    if not runs:
        return None
    alone = min(runs, key=lambda run: run["users"])  # queueing aside
    b, e, route = alone["beyond_embedding_ms"], alone["embed_ms"], alone["route_ms"]
    return (f"p50 {b['p50']:.1f} ms beyond the embedding's {e['p50']:.1f} at "
            f"{alone['users']} user (the server's routing {route['p50']:.1f} of it, the rest "
            "HTTP both ways and the framework), from each response's Server-Timing",
            b["p50"] <= 2)


def _memory(r: Results) -> tuple[str, bool] | None:
    memory = r.get("memory")
    if memory is None:
        return None
    p, found = memory["recall_ms"], memory["exact_found"]
    real = memory.get("real_tasks", {}).get("exact_found_codes")
    return (f"recall p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms at {memory['tasks']:,} tasks; "
            f"whole process {memory['rss_full_mb']:,.0f} MB; exact 32 nearest found "
            f"{100 * found:.1f}%" + (f"; on 10k real questions, 8-bit codes: {100 * real:.1f}%"
                                     if real is not None else ""),
            memory["tasks"] >= 1_000_000 and p["p50"] <= 1 and memory["rss_full_mb"] <= 1024
            and found >= 0.95 and (real is None or real >= 0.95))


def _startup(r: Results) -> tuple[str, bool] | None:
    startup = r.get("startup")
    if startup is None:
        return None
    starts = startup["starts"]
    build = startup.get("build", {})
    source = (f"{build['paged_rows']:,} tasks' codes from {build['pages']} sealed pages, the "
              "rest read back from the log" if build.get("pages")
              else "vectors read back from the log")
    return (f"ready in {startup['ready_s']:.2f} s at {startup['tasks']:,} remembered tasks "
            f"(a fresh process to its first select(), median of {len(starts)}; opening the "
            f"router {startup['router_s']:.2f} s: checkpoint restored, {source})",
            startup["tasks"] >= 1_000_000 and startup["ready_s"] <= 5
            and all(s["restored"] for s in starts))


def _replay(r: Results) -> tuple[str, bool] | None:
    quality = r.get("quality")
    if quality is None:
        return None
    speeds = [run["rounds_per_s"] for run in quality["runs"] if run["workload"] == "mmlu_pro"]
    if not speeds:
        return None
    return (f"MMLU-Pro cold start: median {statistics.median(speeds):,.0f} rounds/s "
            f"({min(speeds):,.0f}–{max(speeds):,.0f}), two replays at a time",
            min(speeds) >= 2000)


def _replay_warm(r: Results) -> tuple[str, bool] | None:
    speed = r.get("replay_speed")
    if speed is None or "warm" not in speed["summary"]:
        return None
    warm, cold = speed["summary"]["warm"], speed["summary"].get("cold")
    runs = [run for run in speed["runs"] if run["mode"] == "warm"]
    besides = statistics.median(run["other_s"] for run in runs)
    return (f"MMLU-Pro, {speed['warm']:.0%} of the questions given with every outcome "
            f"first: median {warm['median']:,.0f} rounds/s ({warm['min']:,.0f}–"
            f"{warm['max']:,.0f})"
            + (f" against {cold['median']:,.0f} cold in the same run" if cold else "")
            + f", two replays at a time; the warm start itself {besides:.1f} s for "
            f"{runs[0]['warm_tasks']:,} tasks",
            warm["min"] >= 2000)


def _embedding(r: Results) -> tuple[str, bool] | None:
    embedder = r.get("embedder")
    if embedder is None:
        return None
    runs = {run["kind"]: run for run in embedder["runs"]}
    kind = DEFAULT_EMBEDDER  # the shipped embedder's run
    fast, torch = runs[kind], runs["minilm-torch"]
    cosine = fast["cosine_mmlu_pro"] or fast["cosine_short"]
    label = "ONNX int8" if kind.endswith("-int8") else "ONNX float32"
    return (f"{label} {fast['single_ms']['p50']:.1f} ms vs torch "
            f"{torch['single_ms']['p50']:.1f} ms per short prompt, cosine >= {cosine['min']:.4f}",
            cosine["min"] >= 0.99 and fast["single_ms"]["p50"] < torch["single_ms"]["p50"])


def _peers(r: Results) -> tuple[str, bool] | None:
    peers = r.get("peers")
    if peers is None:
        return None
    rows = peers["summary"]
    ours = next(row for row in rows if row["name"].startswith("bandit-router"))
    others = [row for row in rows  # (the oracles are references, not peers)
              if not row["name"].startswith(("bandit-router", "oracle"))]
    if not others:
        return f"regret {ours['regret_mean']:.0f}; no peer measured", False
    best = min(others, key=lambda row: row["regret_mean"])
    speed = ours["rounds_per_s"] or 0.0
    return (f"regret {ours['regret_mean']:.0f} at {speed:,.0f} rounds/s; lowest peer "
            f"{best['name']} {best['regret_mean']:.0f} at {best['rounds_per_s']:,.0f} rounds/s",
            ours["regret_mean"] < best["regret_mean"]
            and speed >= 5 * (best["rounds_per_s"] or float("inf")))


ROWS = [
    Row("`select()` in-process, real embedder, new short prompts",
        "p50 <= 6 ms, p99 <= 15 ms", "router", _select),
    Row("`select()` with the embedding given, 15 models, budgets on",
        "p50 <= 0.5 ms, p99 <= 2 ms at 10k-1M remembered", "startup", _select_given),
    Row("`reward()` acknowledged durably", ">= 3,000/s on SQLite", "router", _reward),
    Row("`reward()` acknowledged durably on PostgreSQL", ">= 5,000/s", "router_postgresql",
        _reward_postgresql),
    Row("HTTP select+reward pairs, real embedder", ">= 250 pairs/s, select p99 <= 100 ms",
        "http", _http),
    Row("HTTP select: the router's time beyond the embedding", "<= 2 ms p50", "http",
        _beyond_embedding),
    Row("task memory recall", "<= 1 ms and <= 1 GB RSS at 1M tasks, recall@32 >= 0.95",
        "memory", _memory),
    Row("start-up to ready with 1M remembered tasks", "<= 5 s", "startup", _startup),
    Row("replay with precomputed embeddings", ">= 2,000 rounds/s", "quality", _replay),
    Row("replay with precomputed embeddings, warm start", ">= 2,000 rounds/s",
        "replay_speed", _replay_warm),
    Row("the embedding model: faster, same vectors", "cosine >= 0.99 to float32 torch",
        "embedder", _embedding),
    Row("against the bandit libraries (peer bench, 3 seeds)",
        "regret below every peer's, at >= 5x the lowest-regret peer's rounds/s", "peers",
        _peers),
]


def load(results: Path = RESULTS) -> Results:
    out = {}
    for path in results.glob("*.json"):
        if path.stem != "suite":
            out[path.stem] = json.loads(path.read_text())
    return out


def table(results: Results) -> list[dict[str, Any]]:
    rows = []
    for row in ROWS:
        got = row.read(results)
        rows.append({"figure": row.figure, "target": row.target, "source": row.source,
                     "now": got[0] if got else f"not measured (no {row.source}.json)",
                     "met": got[1] if got else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", nargs="*", choices=sorted(PARTS), default=[],
                        help="measure these parts first (each writes its own JSON)")
    parser.add_argument("--out", default=str(RESULTS / "suite.json"))
    args = parser.parse_args(argv)
    for part in args.run:
        print(f"--- {part}: benchmarks/{PARTS[part]}", flush=True)
        subprocess.run([sys.executable, str(HERE / PARTS[part])], check=True)
    rows = table(load())
    width = max(len(r["figure"]) for r in rows)
    for r in rows:
        met = {True: "met", False: "MISSED", None: "-"}[r["met"]]
        print(f"{r['figure']:<{width}}  {met:6}  {r['now']}  [target: {r['target']}]")
    write_json(args.out, {"machine": machine(args), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

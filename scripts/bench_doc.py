"""Render the tables of docs/benchmarks.md from the JSON the benchmark commands write
(benchmarks/results/NAME.json), so that no figure there is typed by hand.

    python scripts/bench_doc.py           # print the document as the JSON renders it
    python scripts/bench_doc.py --write   # rewrite the tables in docs/benchmarks.md
    python scripts/bench_doc.py --check   # exit 1 when docs/benchmarks.md is not that

Each table sits between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``; the
prose around the markers is hand-written. A table says the command that measured it and the
machine it ran on; a result file that is not there yet renders as the command that writes
it. tests/test_bench_doc.py fails when the document is not what this renders.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bandit_router import DEFAULT_EMBEDDER

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
PYTHON = ".venv/bin/python"

#: Each table's command at full size, as the figures in the repository must be measured, and
#: the arguments that makes it (checked against the arguments a result file records).
COMMANDS = {
    "router": "benchmarks/bench_router.py",
    "router_postgresql": ("benchmarks/bench_router.py --memory-sizes --database-url "
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test "
                          "--out benchmarks/results/router_postgresql.json"),
    "http": "benchmarks/bench_http.py",
    "budget_mmlu": "benchmarks/bench_budget_mmlu.py --seeds 0 1 2",
    "checkpoint": "benchmarks/bench_checkpoint.py",
    "policy": "benchmarks/bench_policy.py",
    "embedder": "benchmarks/bench_embedder.py",
    "suite": "benchmarks/suite.py",
    "locust": "benchmarks/bench_locust.py",
    "gateway": "benchmarks/bench_gateway.py",
    "replicas": "benchmarks/bench_replicas.py",
    "peers": "benchmarks/bench_peers.py --peers-python .venv-peers/bin/python",
    "memory": "benchmarks/bench_memory.py",
    "startup": "benchmarks/bench_startup.py",
}
FULL_SIZE: dict[str, dict[str, Any]] = {
    "router": {"n": 1000, "memory_sizes": [10_000, 50_000, 100_000],
               "embedder": DEFAULT_EMBEDDER},
    "router_postgresql": {"n": 1000, "memory_sizes": [], "embedder": DEFAULT_EMBEDDER,
                          "database_url": "postgresql+psycopg://..."},
    "http": {"pairs": 1000, "concurrency": [1, 4, 16]},
    "budget_mmlu": {"shares": [0.25, 0.5, 1.0], "seeds": [0, 1, 2], "limit": None},
    "checkpoint": {"tasks": [2_000, 10_000]},
    "policy": {"rounds": 3000, "repeats": 3, "dims": [32, 384]},
    "embedder": {"n": 500},
    "locust": {"users": [4, 16], "seconds": 60},
    "gateway": {"n": 300},
    "replicas": {"pairs": 600, "users": 8, "parity_rounds": 1000},
    "peers": {"seeds": [0, 1, 2], "n": 20_000},
    "memory": {"tasks": 1_000_000},
    "startup": {"tasks": [10_000, 100_000, 1_000_000], "starts": 3, "selects": 1000},
}

_BLOCK = re.compile(r"(<!-- bench:(\w+):start -->\n)(.*?)(<!-- bench:\2:end -->)", re.S)


# -- figures -----------------------------------------------------------------------------------
def num(x: float) -> str:
    """Three significant digits, thousands with a separator: 0.0712, 3.4, 14.2, 1,234."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def p50_p99(p: dict[str, float]) -> str:
    return f"p50 {num(p['p50'])} ms, p99 {num(p['p99'])} ms"


def slash(p: dict[str, float]) -> str:
    """``p50 / p99 ms``, for a table whose header says which is which."""
    return f"{num(p['p50'])} / {num(p['p99'])} ms"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(row) + " |" for row in rows)]


# -- one renderer per result file --------------------------------------------------------------
def _router(r: dict[str, Any]) -> list[str]:
    rows = [
        [f"`select()`, real MiniLM embedding (`{r.get('embedder', 'minilm-torch')}`) of a new "
         "short prompt", p50_p99(r["select_ms"])],
        ["`select()`, embedding excluded (recall, constraints, VW, committed event)",
         p50_p99(r["select_no_embedding_ms"])],
        ["the same with four budgets in force (router hour/day/request, one tenant's day)",
         p50_p99(r["select_four_budgets_ms"])],
        ["`reward()` (validate, commit with fsync, learn), one after another",
         f"{num(r['reward']['per_s'])} rewards/s ({num(r['reward']['ms_each'])} ms each)"],
        *([["`reward(learn=False)` (validate, commit with fsync), then `sync()` learns them",
             f"{num(r['reward_learn_behind']['per_s'])} rewards/s acknowledged "
             f"({num(r['reward_learn_behind']['ms_each'])} ms each); learned at "
             f"{num(r['reward_learn_behind']['learned_per_s'])}/s"]]
          if "reward_learn_behind" in r else []),
        *([[f"`reward(learn=False)` from {r['reward_concurrent']['threads']} threads at once "
             "(writes that arrive during a commit share the next one)",
             f"{num(r['reward_concurrent']['per_s'])} rewards/s acknowledged, "
             f"{r['reward_concurrent']['writes_per_commit']:.1f} rewards a commit"]]
          if "reward_concurrent" in r else []),
        *([["a bare SQLite commit on the same disk (WAL, `synchronous=FULL`): the floor "
             "under a caller's durable acknowledgement, one caller at a time",
             f"{p50_p99(r['sqlite_commit_ms'])} "
             f"({num(1000 / r['sqlite_commit_ms']['mean'])}/s one after another)"]]
          if "sqlite_commit_ms" in r else []),
        [f"resident memory: MiniLM + VW + FAISS loaded / after {r['rewarded']:,} rewards",
         f"{num(r['rss_mb']['loaded'])} MB / {num(r['rss_mb']['end'])} MB"],
    ]
    ivf = r["ivf_on_real_tasks"]
    if "skipped" not in ivf:
        rows.append([f"exact neighbours the IVF finds ({ivf['remembered']:,} MMLU-Pro "
                     f"questions, MiniLM, {ivf['queries']:,} new ones)",
                     pct(ivf["exact_found"])])
    out = [f"{r['models']} models, a {r['database']} database, {r['calls']:,} calls per "
           "measurement:", "",
           *_table(["hot path", "figure"], rows), ""]
    if "skipped" in ivf:
        out += [f"(IVF on real tasks: skipped, {ivf['skipped']})", ""]
    if not r["recall"]:
        return out[:-1]
    recall = {(row["tasks"], row["index"]): row for row in r["recall"]}
    some = r["recall"][0]
    out += [f"Recall of the {some['neighbours']} nearest past tasks, {some['queries']} queries "
            "(384-d random unit vectors):", ""]
    rows = []
    for n in sorted({n for n, _ in recall}):
        exact, approx = recall[n, "exact"], recall[n, "IVF"]
        rows.append([f"{n:,}",
                     slash(exact["recall_ms"]),
                     slash(approx["recall_ms"]),
                     f"{num(approx['rss_mb'])} MB",
                     f"{num(approx['checkpoint_mb'])} MB, serialised in "
                     f"{num(1e3 * approx['checkpoint_s'])} ms"])
    return out + _table(["remembered tasks", "exact recall p50 / p99", "IVF recall p50 / p99",
                         "resident memory added (IVF)", "the memory in a checkpoint"], rows)


def _http(r: dict[str, Any]) -> list[str]:
    timed = all("beyond_embedding_ms" in run for run in r["runs"])
    rows = [[str(run["users"]), num(run["pairs_per_s"]),
             slash(run["select_ms"]),
             slash(run["reward_ms"]),
             *((slash(run["embed_ms"]), slash(run["route_ms"]),
                slash(run["beyond_embedding_ms"])) if timed else ())]
            for run in r["runs"]]
    head = ["concurrent users", "pairs/s", "select p50 / p99", "reward p50 / p99"]
    if timed:
        head += ["select's embedding p50 / p99 (server)", "its routing (server)",
                 "select beyond its embedding (client)"]
    return [f"{r['pairs']:,} select+reward pairs per row (milliseconds; the embedding and "
            "routing parts from each response's `Server-Timing`):", "",
            *_table(head, rows)]


def _budget_mmlu(r: dict[str, Any]) -> list[str]:
    rows = [[f"{100 * row['share']:g}%", pct(row["spent_share"]), f"{row['quality']:.3f}",
             num(row["refused"]), f"{row['best_fixed_mix']:.3f}",
             f"{row['always_cheapest']:.3f}", f"{row['always_gpt4o']:.3f}",
             "" if row["cost_weight_p50"] is None else num(row["cost_weight_p50"]),
             num(row["rounds_per_s"])]
            for row in r["rows"]]
    tasks = sorted({row["tasks"] for row in r["rows"]})
    return [f"Means over seeds {', '.join(map(str, r['seeds']))}; "
            f"{' / '.join(f'{t:,}' for t in tasks)} questions a day:", "",
            *_table(["daily budget (share of always-gpt-4o's spend)", "spent / budget",
                     "quality (all requests)", "refused", "best fixed mix under the budget",
                     "always-cheapest", "always-gpt-4o", "cost weight, median decision",
                     "rounds/s"], rows)]


def _checkpoint(r: dict[str, Any]) -> list[str]:
    rows = [[f"{row['tasks']:,}", f"{num(row['checkpoint_mb'])} MB",
             f"{num(row['write_ms'])} ms",
             f"{num(row['with_vectors_mb'])} MB, {num(row['with_vectors_write_ms'])} ms",
             f"{num(row['restart_s'])} s"]
            for row in r["rows"]]
    return [f"{r['dataset']}, {r['models']} models, a SQLite file; each write the best of 3:",
            "",
            *_table(["tasks remembered", "checkpoint", "written in",
                     "with the vectors inside (earlier releases)", "restart from it"], rows)]


def _policy(r: dict[str, Any]) -> list[str]:
    a = r["machine"]["args"]
    rows = [[f"{row['dims']}" + (" (no projection)" if row["dims"] == 384 else ""),
             num(row["decide_us"]), num(row["learn_us"])]
            for row in r["rows"]]
    return [f"`{r['exploration']}` exploration, {r['actions']} actions, {r['rounds']:,} "
            f"rounds, median of {r['repeats']} runs (optimism {a['optimism']:g}, gamma_scale "
            f"{a['gamma_scale']:g}, baseline_strength {a['baseline_strength']:g}):", "",
            *_table(["embedding dims the policy sees", "`decide` µs per decision",
                     "`learn` µs per reward"], rows)]


def _embedder(r: dict[str, Any]) -> list[str]:
    def cosine(c: dict[str, float] | None) -> str:
        return "not measured (no data)" if c is None else f"{c['min']:.4f} / {c['mean']:.4f}"

    rows = [[f"`{run['kind']}`" + (" (default)" if run["kind"] == DEFAULT_EMBEDDER else ""),
             f"{num(run['load_s'])} s" + ("" if run["export_s"] is None
                                          else f" ({num(run['export_s'])} s the first time)"),
             f"{num(run['rss_mb']['end'])} MB", slash(run["single_ms"]),
             num(run["batch64_per_s"]), cosine(run["cosine_short"]),
             cosine(run["cosine_mmlu_pro"])]
            for run in r["runs"]]
    threads = r["machine"]["args"]["threads"]
    return [f"all-MiniLM-L6-v2, each runtime in its own process; ONNX Runtime threads: "
            f"{'its default' if threads is None else threads}:", "",
            *_table(["embedder", "load (export kept)", "resident memory", "one short prompt "
                     "p50 / p99", "short prompts/s in batches of 64", "cosine to torch, "
                     "short prompts (min / mean)", "cosine to torch, 500 MMLU-Pro questions "
                     "(min / mean)"], rows)]


def _locust(r: dict[str, Any]) -> list[str]:
    rows = [[str(run["users"]), num(run["pairs_per_s"]),
             f"{num(run['select']['ms']['p50'])} / {num(run['select']['ms']['p99'])} ms",
             f"{num(run['reward']['ms']['p50'])} / {num(run['reward']['ms']['p99'])} ms",
             f"{run['failures']:,} of {run['select']['requests'] + run['reward']['requests']:,}"]
            for run in r["runs"]]
    return [f"Locust, headless, {r['runs'][0]['seconds']} s per row, users without pauses:", "",
            *_table(["users", "select+reward pairs/s", "select p50 / p99",
                     "reward p50 / p99", "failed requests"], rows)]


def _gateway(r: dict[str, Any]) -> list[str]:
    rows = []
    for mode, label in (("complete", "whole answer"), ("stream", "streamed")):
        m = r["modes"][mode]
        rows.append([label, slash(m["direct"]["total_ms"]), slash(m["gateway"]["total_ms"]),
                     f"{num(m['added_ms']['p50'])} / {num(m['added_ms']['p99'])} ms",
                     f"{slash(m['direct']['first_byte_ms'])} → "
                     f"{slash(m['gateway']['first_byte_ms'])}"])
    return [f"{r['n']} chat requests per row, one at a time, every prompt new; each through "
            "the gateway, then the same request straight to a local OpenAI-compatible "
            "upstream (added: the percentiles of each request's difference):", "",
            *_table(["answer", "direct p50 / p99", "through the gateway p50 / p99",
                     "added p50 / p99", "first byte p50 / p99, direct → gateway"], rows)]


def _replicas(r: dict[str, Any]) -> list[str]:
    rows = [[run["layout"], num(run["pairs_per_s"]), slash(run["select_ms"]),
             slash(run["reward_ms"]), f"{run['lag_s']:.2f} s"] for run in r["runs"]]
    a = r["machine"]["args"]
    return [f"PostgreSQL, {r['pairs']:,} select+reward pairs per row from {r['users']} users "
            "spread over the serving processes, every prompt new; publish every "
            f"{a['publish_interval_s']:g} s, replicas look every {a['follow_interval_s']:g} s. "
            "Lag: from the last reward acknowledged to every serving process using a model "
            "that learned it:", "",
            *_table(["layout", "pairs/s", "select p50 / p99", "reward p50 / p99", "lag"],
                    rows), "",
            "What they learn: the built-in synthetic workload (cost weight 50) sent through "
            "the HTTP API, the decisions spread over the serving processes and each rewarded "
            "on another; mean expected reward of the last half of "
            f"{r['parity'][0]['rounds']:,} rounds:", "",
            *_table(["layout", *[f"seed {s}" for s in sorted({p['seed'] for p in r['parity']})]],
                    [[name, *[f"{p['last_half_reward']:.3f}" for p in r["parity"]
                              if p["layout"] == name]]
                     for name in dict.fromkeys(p["layout"] for p in r["parity"])]), "",
            f"One learner learned a log of {r['learn_rate']['rewards']:,} rewards it had not "
            f"written at {num(r['learn_rate']['rewards_per_s'])} rewards/s (SQLite, one "
            "process, 384-d vectors; the VW update and the memory, no embedding)."]


def _peers(r: dict[str, Any]) -> list[str]:
    rows = [[row["name"], num(row["regret_mean"]), num(row["regret_worst"]),
             f"{row['frac_opt_last5k']:.3f}",
             "" if row["rounds_per_s"] is None else num(row["rounds_per_s"])]
            for row in r["summary"]]
    a = r["machine"]["args"]
    return [f"{a['n']:,} rounds, seeds {', '.join(map(str, a['seeds']))}; regret against the "
            "per-round oracle (expected rewards), lowest first:", "",
            *_table(["learner", "regret (mean)", "worst seed", "optimal arm, last 5,000",
                     "rounds/s (median)"], rows)]


def _memory(r: dict[str, Any]) -> list[str]:
    vectors = ("an MMLU-Pro question's MiniLM vector plus noise" if r["vectors"] != "random"
               else "random unit vectors")
    rows = [
        ["`recall()` of the 32 nearest (search and per-model statistics), one thread",
         p50_p99(r["recall_ms"])],
        ["resident memory of the whole process: the router loaded / and the memory full",
         f"{num(r['rss_router_mb'])} MB / {num(r['rss_full_mb'])} MB"],
        ["exact 32 nearest found", pct(r["exact_found"])],
        ["filled one `add()` at a time", f"{num(r['fill_s'])} s"],
        *([[f"the lists fitted on a thread (k-means, from {r['switch_at']:,} rows) / "
            f"the longest `add()`: the move to the IVF at {r['move_at']:,} rows, once",
            f"{num(r['fit_s'])} s / {num(r['move_s'])} s"]] if "fit_s" in r else
          [[f"the move from exact search to the IVF at {r['move_at']:,} rows (k-means), once",
            f"{num(r['move_s'])} s"]]),
        ["the memory in a checkpoint (outcomes, seqs, lists; vectors in the event log) / "
         "rebuilt from it once the vectors are read back",
         f"{num(r['snapshot_mb'])} MB / {num(r['reload_s'])} s"],
    ]
    real = r.get("real_tasks")
    if real:
        rows.append([f"on real questions ({real['remembered']:,} MMLU-Pro remembered, "
                     f"{real['queries']} new, 128 lists): exact 32 nearest found, float "
                     "vectors / the same rows in the same lists as 8-bit codes",
                     f"{pct(real['exact_found_float'])} / {pct(real['exact_found_codes'])}"])
    head = (f"{r['tasks']:,} remembered tasks ({vectors}), a compact memory "
            f"({r['lists']:,} lists, {r['probes']} searched):")
    return [head, "", *_table(["", "figure"], rows)]


def _startup(r: dict[str, Any]) -> list[str]:
    b = r["build"]
    rows = [[str(i + 1), f"{num(s['ready_s'])} s", f"{num(s['interpreter_s'])} s",
             f"{num(s['import_s'])} s", f"{num(s['router_s'])} s",
             f"{num(1000 * s['first_select_s'])} ms", f"{s['peak_rss_mb']:,.0f} MB",
             f"{s['remembered']:,}"]
            for i, s in enumerate(r["starts"])]
    pages = (f" ({b['pages']} pages of sealed codes, {b['pages_mb']:,.0f} MB, hold "
             f"{b['paged_rows']:,} of the remembered tasks)" if "pages" in b else "")
    return [f"{r['tasks']:,} rewarded decisions in a SQLite file of {b['database_mb']:,.0f} MB "
            f"and their checkpoint{pages}; each start a fresh process, timed until its first "
            f"`select()` (median {num(r['ready_s'])} s):", "",
            *_table(["start", "ready", "interpreter", "imports", "`Router()`: embedder, "
                     "checkpoint, memory", "first `select()`", "peak resident memory",
                     "tasks remembered"], rows), *_history_sizes(r)]


def _history_sizes(r: dict[str, Any]) -> list[str]:
    """Each size's start-up and its timed decisions (the embedding given, four budgets)."""
    sizes = [s for s in r.get("sizes", []) if s.get("select_given_ms")]
    if not sizes:
        return []
    rows = [[f"{s['tasks']:,}", f"{s['build']['database_mb']:,.0f} MB",
             f"{num(s['ready_s'])} s", p50_p99(s["select_given_ms"])] for s in sizes]
    n = r["machine"]["args"].get("selects")
    return ["", f"Then each start timed {n:,} more decisions at that history, the embedding "
            "given (embedded beforehand into the router's cache) and four budgets in force "
            "(router hour/day/request, one tenant's day), each event and reservation committed "
            "to the file (the median start's percentiles):", "",
            *_table(["remembered tasks", "database", "ready (median)",
                     "`select()`, embedding given, four budgets"], rows)]


def _suite(r: dict[str, Any]) -> list[str]:
    met = {True: "yes", False: "**no**", None: "not measured"}
    rows = [[row["figure"], row["now"], row["target"], met[row["met"]]] for row in r["rows"]]
    return ["Each figure read from the result file named (issue #17's targets):", "",
            *_table(["figure", "now", "target", "met"], rows)]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "router": _router, "router_postgresql": _router, "http": _http, "budget_mmlu": _budget_mmlu,
    "checkpoint": _checkpoint, "policy": _policy, "embedder": _embedder, "suite": _suite,
    "locust": _locust, "peers": _peers, "gateway": _gateway, "replicas": _replicas,
    "memory": _memory, "startup": _startup,
}


# -- the document ------------------------------------------------------------------------------
def machine_line(m: dict[str, Any]) -> str:
    cpu = f"{m['cpu']}; " if m.get("cpu") else ""  # (recorded since 2026-12-05)
    return (f"Measured with `{PYTHON} {m['command']}` on {m['cpu_count']} cores "
            f"({cpu}{m['platform']}, Python {m['python']}), {m['date_utc']} UTC.")


def render_block(name: str, results: Path = RESULTS) -> str:
    """What goes between the markers of table ``name``: the table from ``results/NAME.json``,
    or, before that file exists, the command that writes it."""
    path = results / f"{name}.json"
    if not path.exists():
        return (f"Not measured yet: run `{PYTHON} {COMMANDS[name]}` (it writes "
                f"`benchmarks/results/{name}.json`), then `python scripts/bench_doc.py "
                "--write`.\n")
    result = json.loads(path.read_text())
    return "\n".join([*RENDERERS[name](result), "", machine_line(result["machine"])]) + "\n"


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every table between its markers rendered anew from ``results``."""
    found = [m.group(2) for m in _BLOCK.finditer(text)]
    unknown = sorted(set(found) - set(RENDERERS))
    missing = sorted(set(RENDERERS) - set(found))
    if unknown or missing or len(found) != len(set(found)):
        raise ValueError(f"bench markers: unknown {unknown}, missing {missing}, found {found}")
    return _BLOCK.sub(lambda m: m.group(1) + render_block(m.group(2), results) + m.group(4),
                      text)


def not_full_size(results: Path = RESULTS) -> list[str]:
    """The result files measured with other sizes than their documented command's."""
    out = []
    for name, want in FULL_SIZE.items():
        path = results / f"{name}.json"
        if path.exists():
            args = json.loads(path.read_text())["machine"]["args"]
            if any(args.get(k) != v for k, v in want.items()):
                out.append(f"{path}: {args}, not the full-size `{COMMANDS[name]}` ({want})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the document in place")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 when the document is not what the results render")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="the folder of the result files")
    args = parser.parse_args(argv)
    text = args.doc.read_text()
    rendered = render(text, args.results)
    if args.write:
        args.doc.write_text(rendered)
        print(f"tables written into {args.doc}")
    elif args.check:
        problems = ([] if rendered == text else
                    [f"{args.doc} is not what {args.results} renders: run "
                     "python scripts/bench_doc.py --write"]) + not_full_size(args.results)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    else:
        sys.stdout.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())

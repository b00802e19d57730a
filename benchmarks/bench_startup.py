"""Start-up to ready with a million remembered tasks: a fresh process opens a router whose
database holds a million rewarded decisions and a checkpoint of them, and answers a first
``select()``.

The database is built once per run, in three steps:

1. the real router (SQLite file, WAL, ``memory_size`` = the tasks asked) takes 50 decisions
   and their rewards, so every table and row is the router's own;
2. a million more events and rewards are written straight into those tables, each a copy
   of one of the router's own rows with its own id, time and task embedding (the task
   stream of ``bench_memory.py``: MMLU-Pro's MiniLM vectors plus noise, or random unit
   vectors without the data);
3. the router of step 1 (still open: opened again, it would learn the copied rows from
   the log) gets a memory that remembers every one of the million rewards, filled one
   ``add()`` at a time as the learner fills it, and its checkpoint is written
   (``Learner.snapshot``: outcomes, seqs and lists, and the codes of every whole 65,536
   rows sealed in pages; the vectors stay in the event log).

Then a new Python process is started and timed until its first ``select()`` returns: the
imports, the embedding model's load, the checkpoint's restore (the policy, the memory's
snapshot, the pages' codes and the vectors of the rows after them read back from the log,
filed in their lists again; nothing is rebuilt from the log and nothing is learned again)
and one decision. The child reports its own
breakdown, and checks that it restored rather than rebuilt.

Each child then times ``--selects`` more decisions at that history with the embedding given
(each prompt embedded beforehand, so ``select()`` finds its vector in the router's embedding
cache) and four budgets in force (router hour/day/request, one tenant's day), as
``bench_router.py`` times them at a few thousand remembered tasks: the recall in the
memory's IVF over every remembered task, the estimates, the budgets' read, VW and Thompson
sampling, the event and its reservation committed to the SQLite file. Every size in
``--tasks`` gets its own database (the largest is the start-up figure).

    .venv/bin/python benchmarks/bench_startup.py [--tasks 10000 100000 1000000] \
        [--selects 1000] [--out PATH]

Writes ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import four_budgets, machine, peak_rss_mb, percentiles, prompts, write_json

#: rows written per transaction while building the log
BATCH = 20_000
#: decisions the real router makes first (the templates of every row written after)
FIRST = 50


def build(url: str, path: str, tasks: int) -> dict[str, float]:
    """The database: FIRST real decisions, ``tasks`` copied rows, a checkpoint of them all."""
    from bench_memory import question_vectors
    from bench_memory import tasks as task_vectors

    from bandit_router import Router, RouterConfig
    from bandit_router.core._learner import write_checkpoint
    from bandit_router.core._memory import Memory

    base = question_vectors()
    config = RouterConfig(memory_size=tasks)
    router = Router(database_url=url, config=config)
    rng = np.random.default_rng(0)
    for i in range(FIRST):
        d = router.select(f"start-up benchmark task {i}: what is {i} squared?")
        router.reward(d.event_id, quality=float(rng.random()), cost_usd=d.estimated_cost_usd,
                      latency_s=1.0, output_tokens=200)
    models = [spec.key for spec in router.catalog]
    # (kept open: opened again after the rows below, it would learn them from the log)

    times: dict[str, float] = {}
    t = time.perf_counter()
    db = sqlite3.connect(path)
    ev_cols = [r[1] for r in db.execute("PRAGMA table_info(br_events)")]
    rw_cols = [r[1] for r in db.execute("PRAGMA table_info(br_rewards)")]
    ev = dict(zip(ev_cols, db.execute("SELECT * FROM br_events WHERE status != 'pending' "
                                      "LIMIT 1").fetchone(), strict=True))
    rw = dict(zip(rw_cols, db.execute("SELECT * FROM br_rewards LIMIT 1").fetchone(),
                  strict=True))
    last_seq = int(db.execute("SELECT max(seq) FROM br_rewards").fetchone()[0])
    ev_sql = (f"INSERT INTO br_events ({', '.join(ev_cols)}) "
              f"VALUES ({', '.join('?' for _ in ev_cols)})")
    rw_sql = (f"INSERT INTO br_rewards ({', '.join(rw_cols)}) "
              f"VALUES ({', '.join('?' for _ in rw_cols)})")
    memory = Memory(dim=384, capacity=tasks)
    fill = 0.0
    for c0 in range(0, tasks, BATCH):
        vectors = task_vectors(base, c0, min(BATCH, tasks - c0))
        events, rewards = [], []
        for j, v in enumerate(vectors):
            i = c0 + j
            eid = f"startup-{i}"
            seq = last_seq + 1 + i
            events.append(tuple({**ev, "id": eid, "created_at": ev["created_at"] + i * 1e-3,
                                 "task_hash": f"{i:064x}", "embedding": v.tobytes(),
                                 "model_key": models[i % len(models)]}[c] for c in ev_cols))
            rewards.append(tuple({**rw, "seq": seq, "event_id": eid,
                                  "received_at": rw["received_at"] + i * 1e-3}[c]
                                 for c in rw_cols))
        with db:
            db.executemany(ev_sql, events)
            db.executemany(rw_sql, rewards)
        t1 = time.perf_counter()
        for j, v in enumerate(vectors):  # as the learner fills it, one add at a time
            i = c0 + j
            memory.add(v, models[i % len(models)], quality=(i % 10) / 10, reward=0.5,
                       cost_usd=1e-4, latency_s=1.0, output_tokens=200,
                       seq=last_seq + 1 + i)
            if i + 1 == memory.switch_at:
                memory.wait_for_lists()
        fill += time.perf_counter() - t1
        if (c0 + BATCH) % 200_000 == 0:
            print(f"  {c0 + BATCH:,} rows, {time.perf_counter() - t:.0f} s", flush=True)
    db.close()
    times["write_log_s"] = time.perf_counter() - t - fill
    times["fill_memory_s"] = fill

    t = time.perf_counter()
    learner = router._learner
    with router._lock:
        learner.memory = memory
        learner.seq = last_seq + tasks
        learner.learned += tasks
        while True:  # (a few pages a checkpoint: as traffic would have sealed them all)
            snap = learner.snapshot()
            write_checkpoint(router.store, snap, time.time())
            if not snap.pages:
                break
    router.close()
    times["checkpoint_s"] = time.perf_counter() - t
    times["database_mb"] = sum(os.path.getsize(p) for p in (path, path + "-wal")
                               if os.path.exists(p)) / 2**20
    with sqlite3.connect(path) as db:
        pages, paged, page_bytes = db.execute(
            "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(length(data)), 0) "
            "FROM br_memory_pages").fetchone()
    times["pages"], times["paged_rows"] = int(pages), int(paged)
    times["pages_mb"] = page_bytes / 2**20
    return times


def child(url: str, tasks: int, started: float, selects: int) -> None:
    """The timed start: imports, the router (embedder, checkpoint), one decision; then
    ``selects`` decisions with the embedding given and four budgets (milliseconds each)."""
    t0 = time.time()
    from bandit_router import Router, RouterConfig

    t1 = time.time()
    router = Router(database_url=url, config=RouterConfig(memory_size=tasks))
    t2 = time.time()
    router.select("What is the capital of Australia?")
    t3 = time.time()
    learner = router._learner
    peak = peak_rss_mb()  # (not ru_maxrss: the builder's peak, carried across exec)
    out: dict[str, Any] = {
        "ready_s": t3 - started, "peak_rss_mb": peak, "interpreter_s": t0 - started,
        "import_s": t1 - t0, "router_s": t2 - t1, "first_select_s": t3 - t2,
        "remembered": len(learner.memory), "learned": learner.learned,
        "restored": learner.learned >= tasks and len(learner.memory) >= tasks}
    out["select_given_ms"] = timed_selects(router, selects)
    router.close()
    print("RESULT " + json.dumps(out), flush=True)


def timed_selects(router: Any, n: int) -> list[float]:
    """Milliseconds of each of ``n`` decisions with the embedding given (the prompts embedded
    beforehand, in one batch, into the router's cache) and four budgets in force."""
    if n <= 0:
        return []
    texts = prompts(n + 50, seed=2)
    router.embedder.embed(texts)  # (the cache holds 4,096 by default)
    with four_budgets(router) as tenant:
        for text in texts[:50]:  # warm-up: code paths, SQLite pages
            router.select(text, tenant=tenant)
        ms = []
        for text in texts[50:]:
            t = time.perf_counter()
            router.select(text, tenant=tenant)
            ms.append(1000 * (time.perf_counter() - t))
    return ms


def measure(tasks: int, starts_wanted: int, selects: int) -> dict[str, Any]:
    """Build a database of ``tasks`` remembered tasks and time ``starts_wanted`` starts."""
    result: dict[str, Any] = {"tasks": tasks}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        path = os.path.join(tmp, "bench.db")
        url = f"sqlite:///{path}"
        print(f"building a log of {tasks:,} rewarded decisions and their checkpoint...")
        result["build"] = build(url, path, tasks)
        print(f"  {result['build']}")
        starts = []
        for _ in range(starts_wanted):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", url, "--tasks", str(tasks),
                 "--selects", str(selects), "--started", repr(time.time())],
                capture_output=True, text=True, check=True)
            line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
            start = json.loads(line[len("RESULT "):])
            if not start["restored"]:
                raise SystemExit(f"the child did not restore the checkpoint: {start}")
            ms = start.pop("select_given_ms")
            start["select_given_ms"] = percentiles(ms) if ms else None
            starts.append(start)
            given = ("" if not ms else
                     f"; then select(), embedding given, 4 budgets: p50 "
                     f"{start['select_given_ms']['p50']:.2f} ms, p99 "
                     f"{start['select_given_ms']['p99']:.2f} ms")
            print(f"  ready in {start['ready_s']:.2f} s (imports {start['import_s']:.2f}, "
                  f"router {start['router_s']:.2f}, first select "
                  f"{start['first_select_s']:.3f}; peak RSS {start['peak_rss_mb']:,.0f} MB)"
                  + given, flush=True)
    result["starts"] = starts
    result["ready_s"] = float(np.median([s["ready_s"] for s in starts]))
    result["router_s"] = float(np.median([s["router_s"] for s in starts]))
    timed = [s["select_given_ms"] for s in starts if s["select_given_ms"]]
    if timed:  # the median start's percentiles
        result["select_given_ms"] = {k: float(np.median([t[k] for t in timed]))
                                     for k in ("p50", "p99", "mean")}
    print(f"{tasks:,} remembered tasks: ready in {result['ready_s']:.2f} s "
          f"(median of {len(starts)} fresh processes; opening the router "
          f"{result['router_s']:.2f} s)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="remembered tasks: one database each (the largest is the start-up "
                             "figure)")
    parser.add_argument("--starts", type=int, default=3, help="fresh processes timed")
    parser.add_argument("--selects", type=int, default=1000,
                        help="decisions each start times after its first (0: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--out",
                        default=str(Path(__file__).parent / "results" / "startup.json"))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tasks[0], args.started, args.selects)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sizes = [measure(tasks, args.starts, args.selects) for tasks in sorted(set(args.tasks))]
    # the largest size's figures at the top (the start-up target's), every size in "sizes"
    result: dict[str, Any] = {"machine": machine(args), **sizes[-1], "sizes": sizes}
    write_json(args.out, result)


if __name__ == "__main__":
    main()

"""What every benchmark writes beside its figures: where, when and how they were measured
(``scripts/bench_doc.py`` renders docs/benchmarks.md's tables from the files written here);
and what several benchmarks measure with: resident memory, short distinct prompts, a scratch
database."""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shlex
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["exact_found", "four_budgets", "machine", "peak_rss_mb", "percentiles", "prompts",
           "rss_mb", "scratch_database", "write_json"]


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """Where, when and how the figures were measured: the command as typed and every option
    it ran with (but ``out``)."""
    from bandit_router.eval.protocol import machine_facts  # (not loaded before it is asked)

    return {**machine_facts(),  # the CPU, its cores, the platform, Python, the time
            "command": shlex.join([f"benchmarks/{Path(sys.argv[0]).name}",
                                   *_without_out(sys.argv[1:])]),
            "args": {k: v for k, v in vars(args).items() if k != "out"}}


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS:``, ``VmHWM:``), MB; the process's peak
    (``ru_maxrss``) where the field is missing."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory, MB (its peak where ``/proc`` is missing)."""
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB: ``VmHWM``, the high-water mark of its own
    address space. Not ``ru_maxrss``: Linux carries that across ``exec``, so a child started
    by ``subprocess`` (vfork, then exec) reports its parent's peak when that was higher."""
    return _status_mb("VmHWM:")


def prompts(n: int, seed: int) -> list[str]:
    """``n`` short prompts of the synthetic workload, each new (an embedding cache miss)."""
    from bandit_router.eval.simulation import SyntheticWorkload  # (on use: light to import)

    wl = SyntheticWorkload(seed=seed)
    return [f"{wl.sample_task().text} (#{seed}-{i})" for i in range(n)]


def _without_out(argv: list[str]) -> list[str]:
    """The arguments but ``--out PATH`` (where a file was written says nothing of how it was
    measured)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            out.append(arg)
    return out


def exact_found(want: np.ndarray, got: np.ndarray) -> float:
    """The share of the exact nearest neighbours (``want``, one row of ids per query) that
    an approximate search found (``got``), over the queries."""
    return float(np.mean([len(set(a) & set(b)) / want.shape[1]
                          for a, b in zip(want, got, strict=True)]))


@contextlib.contextmanager
def four_budgets(router: Any) -> Iterator[str]:
    """Four budgets in force for the block (the router's hour, day and request, one tenant's
    day), as issue #17's ``select()`` figure is timed; yields the tenant to select for."""
    router.set_budget(hourly_limit=1e6, daily_limit=1e6, per_request_limit=10.0)
    router.set_budget(daily_limit=1e6, scope="tenant:bench")
    try:
        yield "bench"
    finally:
        router.clear_budget("router")
        router.clear_budget("tenant:bench")


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50, p99 and mean of latencies (the unit given)."""
    a = np.array(ms)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "mean": float(a.mean())}


def write_json(path: str, result: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    print(f"\nwritten to {path}")


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """``url`` itself for SQLite; on PostgreSQL a new database on the server ``url`` names,
    dropped afterwards (the router's tables start empty, and nothing else is touched)."""
    if not url.startswith("postgresql"):
        yield url
        return
    from sqlalchemy import create_engine, text

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

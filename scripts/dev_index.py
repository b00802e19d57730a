"""Index the trials kept under benchmarks/results/dev/: one line per JSON file, with what
it says of itself (the settings it changed, its note, its seeds) and its headline figures,
so that a trial is found before it is run again.

    python scripts/dev_index.py           # print the index
    python scripts/dev_index.py --write   # rewrite benchmarks/results/dev/INDEX.md
    python scripts/dev_index.py --check   # exit 1 when INDEX.md is not that

A trial run through a patch rather than a setting shows no settings changed: its file name
(and CHANGELOG.md, which names every file) says what it was. tests/test_dev_index.py fails
when a file is added without the index.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "benchmarks" / "results" / "dev"
INDEX = DEV / "INDEX.md"

HEADER = """# Trials kept: an index

Written by `python scripts/dev_index.py --write` from the JSON files in this folder (do not
edit by hand). Each line: the file, the seeds, the settings it changed from the defaults
of its day (a trial run through a patch changes none: its name says what it was, and
CHANGELOG.md tells the verdict), its own note, and its headline figures. Search here before
running a trial.

| file | seeds | settings changed | note | headline |
|---|---|---|---|---|
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "/")


def _changed(data: dict[str, Any]) -> str:
    overrides = (data.get("settings") or {}).get("overrides") or {}
    parts = [f"{part}.{name}={value}" for part, fields in sorted(overrides.items())
             for name, value in sorted((fields or {}).items())]
    return ", ".join(parts)


def _headline(data: dict[str, Any]) -> str:
    if isinstance(data.get("targets"), list):  # bench quality
        return "; ".join(f"{t.get('workload')}: {t.get('figure')}" for t in data["targets"])
    summary = data.get("summary")
    if isinstance(summary, list):  # bench_peers
        return "; ".join(f"{s.get('name')}: regret {s.get('regret_mean', 0):.0f}"
                         for s in summary if str(s.get("name", "")).startswith("bandit-router"))
    if isinstance(data.get("select_ms"), dict):  # bench_router
        s = data["select_ms"]
        return f"select p50 {s.get('p50', 0):.2f} ms, p99 {s.get('p99', 0):.2f} ms"
    rows = data.get("summary_by_workload")
    if isinstance(rows, list):  # bench_safety_net: the router against the net, vs the hull
        nets = sorted(k for k in (rows[0] if rows else {}) if str(k).startswith("net_"))
        return "; ".join(
            f"{r.get('workload')} {r.get('cost_weight'):g}: router "
            f"{r['router']['vs_hull_mean']:+.4f}, "
            + ", ".join(f"{k} {r[k]['vs_hull_mean']:+.4f} ({r[k]['switched']} switched)"
                        for k in nets)
            for r in rows)
    if isinstance(data.get("runs"), list) and "pairs" in data:  # bench_http
        rates = [r.get("pairs_per_s") for r in data["runs"] if isinstance(r, dict)]
        return "pairs/s " + ", ".join(f"{x:.1f}" for x in rates if isinstance(x, int | float))
    return ""


def _seeds(data: dict[str, Any]) -> str:
    seeds = data.get("seeds")
    if isinstance(seeds, list) and seeds:
        return " ".join(str(s) for s in seeds)
    return ""


def render() -> str:
    lines = [HEADER]
    for path in sorted(DEV.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise SystemExit(f"{path.name}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            data = {}
        note = str(data.get("note", ""))
        row = [path.name, _seeds(data), _changed(data), note, _headline(data)]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = INDEX.read_text() if INDEX.exists() else ""
        if current != text:
            print(f"{INDEX.relative_to(ROOT)} is out of date: python scripts/dev_index.py "
                  "--write", file=sys.stderr)
            return 1
        return 0
    if args.write:
        INDEX.write_text(text)
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

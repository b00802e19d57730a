"""The service under Locust (a real load tool, beside bench_http's asyncio driver).

Starts ``bandit-router serve`` in its own process (real MiniLM, a SQLite file, a real API
key), then runs Locust headless in another (``benchmarks/load/locustfile.py``: each user
selects for a new prompt and rewards it, without pause) for each user count, and reads
Locust's CSV: requests/s, failures and latency percentiles per endpoint. Writes
``benchmarks/results/locust.json``. Needs ``pip install locust`` (not a dependency).

    .venv/bin/python benchmarks/bench_locust.py [--users 4 16] [--seconds 60] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _results import machine, write_json
from bench_http import serving

HERE = Path(__file__).resolve().parent


def run_locust(url: str, key: str, users: int, seconds: int, folder: Path) -> dict[str, Any]:
    prefix = folder / f"u{users}"
    exe = os.path.join(os.path.dirname(sys.executable), "locust")
    subprocess.run([exe, "-f", str(HERE / "load" / "locustfile.py"), "--headless", "-H", url,
                    "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
                    "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
                   env={**os.environ, "BANDIT_ROUTER_KEY": key}, check=False)
    rows: dict[str, dict[str, Any]] = {}
    with open(f"{prefix}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "per_s": float(row["Requests/s"]),
                "ms": {"p50": float(row["50%"]), "p99": float(row["99%"]),
                       "mean": float(row["Average Response Time"])}}
    select, reward = rows["/v1/select"], rows["/v1/events/{id}/reward"]
    return {"users": users, "seconds": seconds, "select": select, "reward": reward,
            "pairs_per_s": min(select["per_s"], reward["per_s"]),
            "failures": rows["Aggregated"]["failures"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", default=str(HERE / "results" / "locust.json"))
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(args), "runs": []}
    with serving() as (url, key), tempfile.TemporaryDirectory() as tmp:
        for users in args.users:
            run = run_locust(url, key, users, args.seconds, Path(tmp))
            result["runs"].append(run)
            s, r = run["select"], run["reward"]
            print(f"{users:>3} users: {run['pairs_per_s']:.1f} pairs/s, select p50/p99 "
                  f"{s['ms']['p50']:.0f}/{s['ms']['p99']:.0f} ms, reward p50/p99 "
                  f"{r['ms']['p50']:.0f}/{r['ms']['p99']:.0f} ms, {run['failures']} failures")
    write_json(args.out, result)


if __name__ == "__main__":
    main()

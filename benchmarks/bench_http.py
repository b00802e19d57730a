"""HTTP load on loopback: select+reward pairs per second and latency, real embedder.

Starts ``bandit-router serve`` as its own process (real MiniLM, a SQLite file, real API key),
then drives it from this process with an asyncio httpx client: each virtual user sends a
select with a new prompt (an embedding cache miss), then the reward for it. Writes the
figures, with the machine they were measured on, to ``--out`` (``benchmarks/results/http.json``,
which ``scripts/bench_doc.py`` renders into docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_http.py [--pairs 1000] [--concurrency 1 4 16] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _results import machine, percentiles, write_json

from bandit_router.eval.simulation import SyntheticWorkload
from feedback_api import KeyStore
from feedback_api.timing import durations


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: str, port: int, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    exe = os.path.join(os.path.dirname(sys.executable), "bandit-router")
    env = {**os.environ, "BANDIT_ROUTER_DATABASE_URL": db, **(env or {})}
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--log-level", "warning"],
                            env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("server did not become ready")


@contextlib.contextmanager
def serving(env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """``bandit-router serve`` on a fresh SQLite file with one client key (and ``env``'s
    settings): (URL, key); stopped and removed after."""
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        db = f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        keys = KeyStore(db)
        key = keys.create(name="bench", scope="client")[1]
        keys.close()
        port = free_port()
        proc = start_server(db, port, env)
        try:
            yield f"http://127.0.0.1:{port}", key
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


async def run(url: str | list[str], key: str, pairs: int, concurrency: int,
              seed: int) -> dict[str, Any]:
    """``concurrency`` users send ``pairs`` select+reward pairs, each a new prompt; with
    several URLs (replicas) the users are spread evenly over them."""
    urls = [url] if isinstance(url, str) else url
    wl = SyntheticWorkload(seed=seed)
    prompts = [f"{wl.sample_task().text} (#{seed}-{i})" for i in range(pairs)]
    select_ms: list[float] = []
    reward_ms: list[float] = []
    #: per select: the server's embedding (its Server-Timing), the server's routing, and what
    #: the client saw beyond the embedding (HTTP both ways, the framework, the routing)
    embed_ms: list[float] = []
    route_ms: list[float] = []
    beyond_ms: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in prompts:
        queue.put_nowait(p)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(
            base_url=u, headers={"Authorization": f"Bearer {key}"}, limits=limits,
            timeout=60)) for u in urls]

        async def user(n: int) -> None:
            http = clients[n % len(clients)]
            while not queue.empty():
                prompt = queue.get_nowait()
                t = time.perf_counter()
                r = await http.post("/v1/select", json={"task": prompt})
                select_ms.append(1000 * (time.perf_counter() - t))
                r.raise_for_status()
                timing = durations(r.headers.get("server-timing", ""))
                if "embed" in timing:
                    embed_ms.append(timing["embed"])
                    route_ms.append(timing["route"])
                    beyond_ms.append(select_ms[-1] - timing["embed"])
                event = r.json()["event_id"]
                t = time.perf_counter()
                r = await http.post(f"/v1/events/{event}/reward",
                                    json={"quality": 0.8, "cost_usd": 0.0001, "latency_s": 1})
                reward_ms.append(1000 * (time.perf_counter() - t))
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(user(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
    out = {"users": concurrency, "pairs": pairs, "pairs_per_s": pairs / elapsed,
           "select_ms": percentiles(select_ms), "reward_ms": percentiles(reward_ms)}
    if embed_ms:
        out |= {"embed_ms": percentiles(embed_ms), "route_ms": percentiles(route_ms),
                "beyond_embedding_ms": percentiles(beyond_ms)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "http.json"),
                        help="where the figures go (JSON)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(args), "pairs": args.pairs, "runs": []}
    with serving() as (url, key):
        asyncio.run(run(url, key, 50, 2, seed=99))  # warm-up
        print(f"HTTP on loopback, real MiniLM, SQLite; {args.pairs} select+reward pairs per "
              "run, every prompt new")
        print(f"{'users':>5} {'pairs/s':>8} | {'select p50':>10} {'p99':>7} | "
              f"{'reward p50':>10} {'p99':>7} | {'embed p50':>9} {'beyond it p50':>13}  (ms)")
        for i, c in enumerate(args.concurrency):
            res = asyncio.run(run(url, key, args.pairs, c, seed=i))
            result["runs"].append(res)
            s, r = res["select_ms"], res["reward_ms"]
            e, b = res["embed_ms"], res["beyond_embedding_ms"]
            print(f"{c:>5} {res['pairs_per_s']:>8.1f} | {s['p50']:>10.1f} {s['p99']:>7.1f} | "
                  f"{r['p50']:>10.1f} {r['p99']:>7.1f} | {e['p50']:>9.1f} {b['p50']:>13.1f}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()

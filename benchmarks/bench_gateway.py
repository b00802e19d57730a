"""The gateway's added latency: each chat request sent through ``POST /v1/chat/completions``
(real MiniLM, SQLite, a real API key), then the same request (the same prompt, the model the
gateway chose) straight to the OpenAI-compatible upstream; one at a time, every prompt new.
Both are separate processes on loopback (the upstream is ``tests/feedback_api/upstream.py``,
which answers at once), so each pair's difference is what the gateway adds to that request:
routing (embedding included), logging the decision, the upstream hop and the observation.
``added_ms`` holds the percentiles of those per-request differences. Writes ``--out``
(``benchmarks/results/gateway.json``).

    .venv/bin/python benchmarks/bench_gateway.py [--n 300] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _results import machine, percentiles, prompts, write_json
from bench_http import free_port, serving

from bandit_router import Catalog

UPSTREAM = Path(__file__).resolve().parents[1] / "tests" / "feedback_api" / "upstream.py"


def _timed(client: httpx.Client, url: str, body: dict[str, Any], *,
           stream: bool) -> tuple[float, float, str]:
    """(total ms, ms to the first byte of the body, the model the gateway chose or "")."""
    start = time.perf_counter()
    with client.stream("POST", url, json={**body, "stream": stream}) as r:
        r.raise_for_status()
        chosen = r.headers.get("x-bandit-router-model", "")
        first = None
        for _ in r.iter_raw():
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return 1000 * (end - start), 1000 * ((first or end) - start), chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="requests per way and mode")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gateway.json"))
    args = parser.parse_args()
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(UPSTREAM), str(port), "ok"])
    base = f"http://127.0.0.1:{port}/v1"
    result: dict[str, Any] = {"machine": machine(args), "n": args.n, "modes": {}}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/calls", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
            deployments = [{"id": f"d{i}", "model": spec.key, "provider": spec.provider,
                            "api_base": base} for i, spec in enumerate(Catalog.default())]
            balancing = Path(tmp) / "balancing.json"
            balancing.write_text(json.dumps({"deployments": deployments}))
            with serving({"BANDIT_ROUTER_LOAD_BALANCING_FILE": str(balancing)}) as (url, key):
                texts = prompts(4 * args.n + 40, seed=7)
                direct = httpx.Client(timeout=60)
                gateway = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"})
                for text in texts[:40]:  # warm-up
                    _timed(gateway, f"{url}/v1/chat/completions",
                           {"model": "bandit-router/auto",
                            "messages": [{"role": "user", "content": text}]}, stream=False)
                k = 40
                print(f"{args.n} requests each, one at a time, every prompt new (ms)")
                names = {spec.key: spec.model for spec in Catalog.default()}
                for stream in (False, True):
                    ways: dict[str, dict[str, list[float]]] = {
                        way: {"total": [], "first_byte": []} for way in ("direct", "gateway")}
                    for text in texts[k:k + args.n]:
                        messages = [{"role": "user", "content": text}]
                        t, f, chosen = _timed(gateway, f"{url}/v1/chat/completions", {
                            "model": "bandit-router/auto", "messages": messages}, stream=stream)
                        ways["gateway"]["total"].append(t)
                        ways["gateway"]["first_byte"].append(f)
                        t, f, _ = _timed(direct, f"{base}/chat/completions", {
                            "model": names[chosen], "messages": messages}, stream=stream)
                        ways["direct"]["total"].append(t)
                        ways["direct"]["first_byte"].append(f)
                    k += args.n
                    mode = "stream" if stream else "complete"
                    d, g = ways["direct"], ways["gateway"]
                    result["modes"][mode] = {
                        way: {"total_ms": percentiles(v["total"]),
                              "first_byte_ms": percentiles(v["first_byte"])}
                        for way, v in ways.items()}
                    added = percentiles([b - a for a, b in zip(d["total"], g["total"],
                                                               strict=True)])
                    result["modes"][mode]["added_ms"] = added
                    result["modes"][mode]["added_first_byte_ms"] = percentiles(
                        [b - a for a, b in zip(d["first_byte"], g["first_byte"], strict=True)])
                    print(f"{mode:>8}: direct p50 {percentiles(d['total'])['p50']:.1f} "
                          f"p99 {percentiles(d['total'])['p99']:.1f} | gateway p50 "
                          f"{percentiles(g['total'])['p50']:.1f} p99 "
                          f"{percentiles(g['total'])['p99']:.1f} | added p50 "
                          f"{added['p50']:.1f} p99 {added['p99']:.1f}")
    finally:
        upstream.kill()
        upstream.wait()
    write_json(args.out, result)


if __name__ == "__main__":
    main()

"""Scale-out on PostgreSQL: select+reward pairs per second and latency with one process
(``--role all``) and with one or two ``--role api`` replicas beside a ``--role learner``, and
the lag from the last acknowledged reward to every replica serving a model that learned it;
what one process and a learner with two api replicas learn from the same synthetic stream
(last-half reward, two seeds); how fast one learner learns a log it did not write.

Each layout gets a fresh PostgreSQL database, real MiniLM (ONNX), a real API key; the users
are spread evenly over the replicas; every prompt is new. Writes ``--out``
(``benchmarks/results/replicas.json``, rendered into docs/benchmarks.md by
``scripts/bench_doc.py``).

    .venv/bin/python benchmarks/bench_replicas.py [--pairs 600] [--users 8]
        [--parity-rounds 1000] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _results import machine, scratch_database, write_json
from bench_http import free_port, run

from bandit_router.eval.simulation import SyntheticWorkload, demo_catalog
from feedback_api import KeyStore

PG_ADMIN = os.environ.get("BANDIT_ROUTER_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LAYOUTS = {"one process (all)": ["all"], "learner + 1 api": ["learner", "api"],
           "learner + 2 api": ["learner", "api", "api"]}


def start(db: str, role: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    exe = os.path.join(os.path.dirname(sys.executable), "bandit-router")
    port = free_port()
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--role", role,
                             "--log-level", "warning"],
                            env={**os.environ, "BANDIT_ROUTER_DATABASE_URL": db, **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"{role} server did not become ready")


def version(url: str, admin: str) -> int:
    r = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    found = re.search(r"^bandit_router_policy_version (\S+)$", r.text, re.M)
    return int(float(found.group(1))) if found else -1


@contextlib.contextmanager
def cluster(roles: list[str], env: dict[str, str]) -> Iterator[tuple[list[str], str, str]]:
    """A fresh PostgreSQL database and one server per role on it: (the URLs of the servers
    that serve requests, a client key, an admin key); stopped and dropped after."""
    with scratch_database(PG_ADMIN) as db:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            keys = KeyStore(db)
            key = keys.create(name="bench", scope="client")[1]
            admin = keys.create(name="ops", scope="admin")[1]
            keys.close()
            urls = []
            for role in roles:
                proc, url = start(db, role, env)
                procs.append(proc)
                urls.append(url)
            yield [u for u, r in zip(urls, roles, strict=True) if r != "learner"], key, admin
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()


def layout(name: str, roles: list[str], pairs: int, users: int, env: dict[str, str],
           seed: int) -> dict[str, Any]:
    """Throughput and latency of ``roles``, and the lag until every serving process uses a
    model that learned the last reward."""
    with cluster(roles, env) as (serving, key, admin):
        warm = 40
        asyncio.run(run(serving, key, warm, 2, seed=99))
        res = asyncio.run(run(serving, key, pairs, users, seed))
        done = time.perf_counter()
        deadline = done + 60
        while (any(version(u, admin) < warm + pairs for u in serving)
               and time.perf_counter() < deadline):
            time.sleep(0.02)
        res["lag_s"] = time.perf_counter() - done
        return {"layout": name, "roles": roles, **res}


def parity(name: str, roles: list[str], rounds: int, env: dict[str, str],
           catalog: str, seed: int) -> dict[str, Any]:
    """What the layout learns: the synthetic workload (its own catalog, cost weight 50),
    decisions spread over the serving processes, each rewarded on the next one; the mean
    expected reward of the last half of the choices."""
    env = {**env, "BANDIT_ROUTER_CATALOG_PATH": catalog, "BANDIT_ROUTER_COST_WEIGHT": "50"}
    wl = SyntheticWorkload(seed=seed)
    got: list[float] = []
    with cluster(roles, env) as (serving, key, _):
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(headers=auth, timeout=30) as http:
            for i in range(rounds):
                task = wl.sample_task()
                d = http.post(f"{serving[i % len(serving)]}/v1/select",
                              json={"task": task.text}).json()
                model = f"{d['provider']}/{d['model']}"
                o = wl.outcome(task, model)
                http.post(f"{serving[(i + 1) % len(serving)]}/v1/events/{d['event_id']}/reward",
                          json={"quality": o.quality, "cost_usd": o.cost_usd}
                          ).raise_for_status()
                got.append(wl.expected_reward(task.topic, model, 50.0))
    return {"layout": name, "seed": seed, "rounds": rounds,
            "last_half_reward": sum(got[rounds // 2:]) / (rounds - rounds // 2)}


def learn_rate(rewards: int) -> dict[str, Any]:
    """How fast one learner learns a log it did not write (a standby taking over): rewards
    stored by a follower, then learned by another router from the log (SQLite file, the
    synthetic workload, 384-d hashed vectors: the VW update and the memory, no embedding)."""
    from bandit_router import HashEmbedder, PolicyConfig, Router, RouterConfig
    with tempfile.TemporaryDirectory(prefix="bench-learn-") as tmp:
        url = f"sqlite:///{tmp}/learn.db"

        def make() -> Router:
            return Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                          policy=PolicyConfig(seed=0),
                          config=RouterConfig(cost_weight=50.0, checkpoint_every=10**9),
                          follow=True)
        wl = SyntheticWorkload(seed=0)
        writer = make()
        for i in range(rewards):
            task = wl.sample_task()
            d = writer.select(task.text, event_id=f"e{i}")
            o = wl.outcome(task, f"{d.provider}/{d.model}")
            writer.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd)
        writer.close()
        learner = make()
        begin = time.perf_counter()
        learned = learner.take_over()
        elapsed = time.perf_counter() - begin
        learner.close()
    return {"rewards": learned, "seconds": elapsed, "rewards_per_s": learned / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--publish-interval-s", type=float, default=1.0)
    parser.add_argument("--follow-interval-s", type=float, default=0.5)
    parser.add_argument("--parity-rounds", type=int, default=1000,
                        help="rounds of the synthetic workload per layout and seed")
    parser.add_argument("--out",
                        default=str(Path(__file__).parent / "results" / "replicas.json"))
    args = parser.parse_args()
    env = {"BANDIT_ROUTER_PUBLISH_INTERVAL_S": str(args.publish_interval_s),
           "BANDIT_ROUTER_FOLLOW_INTERVAL_S": str(args.follow_interval_s)}
    result: dict[str, Any] = {"machine": machine(args), "pairs": args.pairs,
                              "users": args.users, "runs": []}
    print(f"PostgreSQL, real MiniLM, {args.pairs} pairs, {args.users} users spread over the "
          "serving processes")
    print(f"{'layout':<20} {'pairs/s':>8} | {'select p50':>10} {'p99':>7} | "
          f"{'reward p50':>10} {'p99':>7} | {'lag s':>6}")
    for i, (name, roles) in enumerate(LAYOUTS.items()):
        res = layout(name, roles, args.pairs, args.users, env, seed=i)
        result["runs"].append(res)
        s, r = res["select_ms"], res["reward_ms"]
        print(f"{name:<20} {res['pairs_per_s']:>8.1f} | {s['p50']:>10.1f} {s['p99']:>7.1f} | "
              f"{r['p50']:>10.1f} {r['p99']:>7.1f} | {res['lag_s']:>6.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as tmp:
        catalog = os.path.join(tmp, "catalog.json")
        with open(catalog, "w") as fh:
            json.dump(demo_catalog().to_dict(), fh)
        result["parity"] = [parity(name, LAYOUTS[name], args.parity_rounds, env, catalog, s)
                            for s in (0, 1) for name in ("one process (all)", "learner + 2 api")]
    for row in result["parity"]:
        print(f"{row['layout']:<20} seed {row['seed']}: last-half reward "
              f"{row['last_half_reward']:.3f}")
    result["learn_rate"] = learn_rate(3000)
    print(f"one learner learns {result['learn_rate']['rewards_per_s']:.0f} rewards/s from the log")
    write_json(args.out, result)


if __name__ == "__main__":
    main()

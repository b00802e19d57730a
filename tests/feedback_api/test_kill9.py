"""``kill -9`` under load (issue #19), real server processes: every select and reward that got
a 2xx is in the database after the restarts, the rewards stored are all learned, and the
memory holds every rewarded task. On SQLite (one server killed three times) and on two
PostgreSQL replicas (each reward sent to the other replica; either one killed)."""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import Server, free_port, make_server

pytestmark = pytest.mark.slow


class Load:
    """Workers that select (named events) then reward, recording what was acknowledged."""

    def __init__(self, servers: list[Server], workers: int = 3) -> None:
        self.servers = servers
        self.selects: set[str] = set()
        self.rewards: dict[str, float] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(w,)) for w in range(workers)]

    def _run(self, worker: int) -> None:
        rng = random.Random(worker)
        i = 0
        while not self._stop.is_set():
            i += 1
            name, quality = f"w{worker}-{i}", round(rng.random(), 3)
            a, b = rng.sample(self.servers, 2) if len(self.servers) > 1 else self.servers * 2
            auth = {"Authorization": f"Bearer {a.client_key}"}
            try:
                r = httpx.post(f"{a.url}/v1/select", json={"task": f"task {worker} {i % 50}",
                                                           "event_id": name},
                               headers=auth, timeout=10)
                if r.status_code != 200:
                    continue
                with self._lock:
                    self.selects.add(name)
                r = httpx.post(f"{b.url}/v1/events/{name}/reward", json={"quality": quality},
                               headers=auth, timeout=10)
                if r.status_code == 200:
                    with self._lock:
                        self.rewards[name] = quality
            except httpx.HTTPError:
                with self._lock:
                    self.errors += 1
                time.sleep(0.05)

    def wait_for(self, more: int, timeout: float = 60.0) -> None:
        """Go on until ``more`` further rewards are acknowledged (however slow the machine)."""
        with self._lock:
            want = len(self.rewards) + more
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.rewards) >= want:
                    return
            assert time.monotonic() < deadline, f"the load got {len(self.rewards)} of {want}"
            time.sleep(0.05)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def _kill(server: Server) -> None:
    assert server.proc is not None
    server.proc.kill()  # SIGKILL: no shutdown, no final checkpoint
    server.proc.wait()
    server.proc = None


def _metric(server: Server, name: str) -> float:
    body = httpx.get(f"{server.url}/metrics",
                     headers={"Authorization": f"Bearer {server.admin_key}"}).text
    match = re.search(rf"^{name} (\S+)$", body, re.M)
    assert match, name
    return float(match.group(1))


def _check(servers: list[Server], load: Load) -> None:
    assert len(load.rewards) >= 50 and load.errors > 0  # real load, and real kills
    engine = create_engine(servers[0].database_url)
    try:
        with engine.connect() as conn:
            events = set(conn.execute(text("SELECT id FROM br_events")).scalars())
            rewards = dict(conn.execute(text(
                "SELECT event_id, quality FROM br_rewards WHERE NOT is_default")).all())
    finally:
        engine.dispose()
    prefix = re.compile(r"^k\d+~")
    events = {prefix.sub("", e) for e in events}
    rewards = {prefix.sub("", e): q for e, q in rewards.items()}
    assert load.selects <= events, f"lost selects: {sorted(load.selects - events)[:5]}"
    lost = {e for e in load.rewards if rewards.get(e) != load.rewards[e]}
    assert not lost, f"lost rewards: {sorted(lost)[:5]}"
    print(f"\nacknowledged: {len(load.selects)} selects, {len(load.rewards)} rewards; in the "
          f"database after the kills: {len(events)} events, {len(rewards)} rewards; "
          f"{load.errors} requests failed while a server was down")
    for server in servers:  # every stored reward learned, every rewarded task remembered
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _metric(server, "bandit_router_policy_version") >= len(rewards):
                break
            time.sleep(0.2)
        assert _metric(server, "bandit_router_policy_version") == len(rewards)
        stats = httpx.get(f"{server.url}/v1/stats",
                          headers={"Authorization": f"Bearer {server.admin_key}"}).json()
        assert stats["remembered_tasks"] == len(rewards)


def test_kill_9_under_load_on_sqlite(tmp_path: Path) -> None:
    srv = make_server(tmp_path, BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_CHECKPOINT_EVERY="50")
    srv.start()
    try:
        with Load([srv]) as load:
            for _ in range(3):
                load.wait_for(20)
                _kill(srv)
                time.sleep(0.3)
                srv.start()
            load.wait_for(10)
        _check([srv], load)
    finally:
        srv.stop()


def test_kill_9_under_load_on_two_postgresql_replicas(tmp_path: Path, pg_url: str) -> None:
    first = make_server(tmp_path, database_url=pg_url, BANDIT_ROUTER_EMBEDDER="hash",
                        BANDIT_ROUTER_CHECKPOINT_EVERY="50")
    second = dataclasses.replace(first, url=f"http://127.0.0.1:{free_port()}",
                                 log=tmp_path / "second.log")
    servers = [first, second]
    for s in servers:
        s.start()
    try:
        with Load(servers) as load:
            for victim in (first, second, first):
                load.wait_for(20)
                _kill(victim)
                time.sleep(0.3)
                victim.start()
            load.wait_for(10)
        _check(servers, load)
    finally:
        for s in servers:
            s.stop()

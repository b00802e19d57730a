"""Scale-out on PostgreSQL (issue #19), real server processes: two ``--role api`` replicas
serve the model that one ``--role learner`` publishes; a second learner waits as a standby,
and takes over when the first is killed; nothing is learned twice; an api replica killed
under load loses nothing it acknowledged."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bandit_router.eval.simulation import SyntheticWorkload, demo_catalog

from .conftest import Server, free_port, make_server
from .test_kill9 import Load, _check, _kill, _metric

pytestmark = pytest.mark.slow

#: the learner lock's key (bandit_router.core._leader) as pg_locks shows it: two 32-bit halves
_CLASSID, _OBJID = 0x62, 0x616E646C


def _replica(base: Server, tmp: Path, role: str, name: str) -> Server:
    return dataclasses.replace(base, url=f"http://127.0.0.1:{free_port()}",
                               log=tmp / f"{name}.log", proc=None,
                               env={**base.env, "BANDIT_ROUTER_ROLE": role})


def _version(server: Server) -> int:
    return int(_metric(server, "bandit_router_policy_version"))


def _wait(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - start


def _traffic(apis: list[Server], wl: SyntheticWorkload, n: int, tag: str) -> None:
    """n decisions, each selected on one replica and rewarded on the other."""
    for i in range(n):
        a, b = apis[i % 2], apis[(i + 1) % 2]
        auth = {"Authorization": f"Bearer {a.client_key}"}
        task = wl.sample_task()
        d = httpx.post(f"{a.url}/v1/select", json={"task": task.text, "event_id": f"{tag}{i}"},
                       headers=auth, timeout=10).json()
        o = wl.outcome(task, f"{d['provider']}/{d['model']}")
        r = httpx.post(f"{b.url}/v1/events/{d['event_id']}/reward",
                       json={"quality": o.quality, "cost_usd": o.cost_usd}, headers=auth,
                       timeout=10)
        assert r.status_code == 200, r.text


def test_api_replicas_follow_one_learner_and_a_standby_takes_over(tmp_path: Path,
                                                                   pg_url: str) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    base = make_server(tmp_path, database_url=pg_url, BANDIT_ROUTER_EMBEDDER="hash",
                       BANDIT_ROUTER_CATALOG_PATH=str(catalog),
                       BANDIT_ROUTER_PUBLISH_INTERVAL_S="0.5",
                       BANDIT_ROUTER_FOLLOW_INTERVAL_S="0.25",
                       BANDIT_ROUTER_COST_WEIGHT="50")
    engine = create_engine(pg_url)

    def lock_holders() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :c AND objid = :o AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"),
                {"c": _CLASSID, "o": _OBJID}).scalar())

    first = _replica(base, tmp_path, "learner", "learner-a")
    standby = _replica(base, tmp_path, "learner", "learner-b")
    apis = [_replica(base, tmp_path, "api", f"api-{i}") for i in range(2)]
    servers = [first, *apis]
    try:
        for s in servers:
            s.start()
        _wait(lambda: lock_holders() == 1, 30)  # the first learner leads
        standby.start()
        servers.append(standby)
        assert lock_holders() == 1  # the standby waits

        wl = SyntheticWorkload(seed=3)
        _traffic(apis, wl, 80, "a")
        lag = _wait(lambda: all(_version(s) == 80 for s in apis), 30)
        # one publish (0.5 s) and one look (0.25 s); the rest is room for a loaded CI machine
        assert lag < 10.0
        assert _version(first) == 80
        # the standby follows meanwhile, on its own look (it may be one behind the APIs)
        _wait(lambda: _version(standby) == 80, 10)
        # a decision records the version that made it
        d = httpx.post(f"{apis[0].url}/v1/select", json={"task": "probe"}, timeout=10,
                       headers={"Authorization": f"Bearer {apis[0].client_key}"}).json()
        assert d["policy_version"] == 80

        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGKILL)  # the leader dies; its session with it
        first.proc.wait(timeout=10)
        servers.remove(first)
        _traffic(apis, wl, 50, "b")
        takeover = _wait(lambda: all(_version(s) == 130 for s in apis), 60)
        assert lock_holders() == 1  # the standby's: the first is dead, replicas never lock
        assert _version(standby) == 130
        print(f"replicas at the learner's version {lag:.2f} s after the last reward; "
              f"{takeover:.2f} s after the last reward once the standby took over")

        with engine.connect() as conn:  # every publication learned each reward once
            for learned, seq in conn.execute(text(
                    "SELECT learned, reward_seq FROM br_checkpoints WHERE arm = ''")):
                logged = conn.execute(text("SELECT count(*) FROM br_rewards WHERE seq <= :s"),
                                      {"s": seq}).scalar()
                assert learned == logged
            assert conn.execute(text("SELECT count(*) FROM br_rewards")).scalar() == 130

        # kill -9 of an api replica under load: what either replica acknowledged is kept,
        # and the learner learns it all
        with Load(apis) as load:  # _check wants 50 rewards acknowledged: counted, not timed
            load.wait_for(40)
            _kill(apis[0])
            time.sleep(0.3)
            apis[0].start()
            load.wait_for(15)
        _check([*apis, standby], load)
    finally:
        for s in servers:
            s.stop()
        engine.dispose()

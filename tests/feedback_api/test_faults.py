"""Faults the service must survive (issue #19), against a real server: the database locked by
another process answers 503 with Retry-After within the configured time, never a hang, and
the service recovers by itself when the lock goes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import Server, make_server


@pytest.fixture(scope="module")
def server_1s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("faults"), BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_DATABASE_TIMEOUT_S="1")
    srv.start()
    yield srv
    srv.stop()


def test_a_locked_database_is_503_with_retry_after_then_recovers(server_1s: Server) -> None:
    srv = server_1s
    auth = {"Authorization": f"Bearer {srv.client_key}"}
    before = httpx.post(f"{srv.url}/v1/select", json={"task": "before"}, headers=auth)
    assert before.status_code == 200
    path = srv.database_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        start = time.monotonic()
        r = httpx.post(f"{srv.url}/v1/select", json={"task": "during"}, headers=auth,
                       timeout=30)
        took = time.monotonic() - start
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "DatabaseUnavailableError"
        assert r.headers["Retry-After"] == "1"
        assert took < 5.0  # database_timeout_s=1, not the 30 s it used to wait
        rw = httpx.post(f"{srv.url}/v1/events/{before.json()['event_id']}/reward",
                        json={"quality": 1.0}, headers=auth, timeout=30)
        assert rw.status_code == 503
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # back by itself: the refused reward can be sent again, nothing of it was kept
    rw = httpx.post(f"{srv.url}/v1/events/{before.json()['event_id']}/reward",
                    json={"quality": 1.0}, headers=auth)
    assert rw.status_code == 200, rw.text
    after = httpx.post(f"{srv.url}/v1/select", json={"task": "after"}, headers=auth)
    assert after.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the background learner survived and learns it
        event = httpx.get(f"{srv.url}/v1/events/{after.json()['event_id']}", headers=auth)
        if event.json()["policy_version"] >= 1:
            break
        time.sleep(0.2)
    assert event.json()["policy_version"] >= 1


def test_logs_carry_no_keys_and_no_task_text(tmp_path) -> None:
    """At the default log level (info), through successes, refusals and errors."""
    srv = make_server(tmp_path, BANDIT_ROUTER_EMBEDDER="hash")
    srv.log_level = "info"
    task = "SECRET-TASK-TEXT-about-owls"
    wrong = "br-" + "x" * 43
    srv.start()
    try:
        auth = {"Authorization": f"Bearer {srv.client_key}"}
        d = httpx.post(f"{srv.url}/v1/select", json={"task": task}, headers=auth).json()
        httpx.post(f"{srv.url}/v1/events/{d['event_id']}/reward", json={"quality": 1.0},
                   headers=auth)
        assert httpx.post(f"{srv.url}/v1/select", json={"task": task},
                          headers={"X-API-Key": wrong}).status_code == 401
        assert httpx.post(f"{srv.url}/v1/select", json={"task": task, "cost_weight": -1},
                          headers=auth).status_code == 422
        assert httpx.post(f"{srv.url}/v1/select", content=b'{"task": "' + task.encode(),
                          headers={**auth, "Content-Type": "application/json"}
                          ).status_code == 400
        httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {srv.admin_key}"})
    finally:
        srv.stop()
    assert srv.log is not None
    log = srv.log.read_text()
    assert "POST /v1/select" in log  # the access log is on at this level
    for secret in (srv.client_key, srv.admin_key, wrong, task):
        assert secret not in log


def test_reward_storms_keep_the_earliest_and_count_spend_once(server_1s: Server) -> None:
    """Concurrent rewards for one event, a reward racing its select: one 2xx, the rest 409
    or 404, and the budget's spend counts the accepted cost once."""
    from concurrent.futures import ThreadPoolExecutor

    srv = server_1s
    admin = {"Authorization": f"Bearer {srv.admin_key}"}
    auth = {"Authorization": f"Bearer {srv.client_key}"}
    r = httpx.put(f"{srv.url}/v1/admin/budgets", json={"daily_limit": 100.0}, headers=admin)
    assert r.status_code == 200
    start = next(s for s in r.json() if s["window"] == "day")  # earlier tests' spend
    try:
        # a reward racing its select: unknown until the select is stored, then accepted
        early = httpx.post(f"{srv.url}/v1/events/storm-0/reward", json={"quality": 1.0},
                           headers=auth)
        assert early.status_code == 404
        d = httpx.post(f"{srv.url}/v1/select", json={"task": "storm", "event_id": "storm-0"},
                       headers=auth).json()
        costs = [0.001 * (i + 1) for i in range(12)]
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda c: httpx.post(
                f"{srv.url}/v1/events/{d['event_id']}/reward",
                json={"quality": 0.5, "cost_usd": c}, headers=auth, timeout=30), costs))
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [409] * 11, codes
        accepted = next(r for r in answers if r.status_code == 200).json()["cost_usd"]
        status = httpx.get(f"{srv.url}/v1/admin/budgets", headers=admin).json()
        day = next(s for s in status if s["window"] == "day")
        assert day["spent_usd"] - start["spent_usd"] == pytest.approx(accepted)
        assert day["reserved_usd"] == pytest.approx(start["reserved_usd"], abs=1e-12)
        event = httpx.get(f"{srv.url}/v1/events/storm-0", headers=auth).json()
        assert event["reward"]["cost_usd"] == pytest.approx(accepted)
    finally:
        httpx.delete(f"{srv.url}/v1/admin/budgets", params={"scope": "router"}, headers=admin)

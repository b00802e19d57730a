"""The fixed-model alert on a schedule (feedback_api.checks), in process and on the real
server: the database is seeded by a library Router that explores three times in four
against one clearly better model, so always that model beats it, with evidence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from bandit_router import PolicyConfig, Router, fixed_model_alerts
from bandit_router.eval.simulation import HashEmbedder, demo_catalog
from feedback_api import KeyStore, Settings, checks, create_app
from feedback_api.checks import FixedModelCheck
from tests.conftest import FakeClock
from tests.eval.test_fixed import truth_traffic

from .conftest import make_server

ALERTS = "/v1/admin/alerts"


def _seed(tmp: Path) -> tuple[str, str]:
    """A database holding 1,500 rewarded requests of an exploring router (logged now, by
    the clock, so the last day holds them); the demo catalog as a file."""
    db = f"sqlite:///{tmp / 'service.db'}"
    router = Router(database_url=db, catalog=demo_catalog(), embedder=HashEmbedder(),
                    policy=PolicyConfig(exploration="epsilon", epsilon=0.75, seed=0))
    truth_traffic(router, 1500)
    router.close()
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    return db, str(catalog)


def _library(db: str) -> list[dict[str, object]]:
    router = Router(database_url=db, catalog=demo_catalog(), embedder=HashEmbedder())
    try:
        return [a.to_dict() for a in fixed_model_alerts(router)]
    finally:
        router.close()


def test_the_check_runs_again_only_after_its_interval(tmp_path: Path) -> None:
    db, _ = _seed(tmp_path)
    clock = FakeClock(time.time())  # (the traffic was logged by the real clock)
    router = Router(database_url=db, catalog=demo_catalog(), embedder=HashEmbedder())
    try:
        check = FixedModelCheck(every_s=600, window_s=86400, clock=clock, timer=clock)
        first = check.alerts(router)  # the first poll waits for the first scan
        assert [a.model for a in first] == ["openlang/polyglot"] and check.runs == 1
        clock.advance(599)
        assert check.alerts(router) == first
        check.wait()
        assert check.runs == 1  # within the interval: the last answer, no scan
        clock.advance(1)
        assert check.alerts(router) == first  # a scan starts; the poll does not wait
        check.wait()
        assert check.runs == 2 and check.alerts(router) == first
        off = FixedModelCheck(every_s=0, window_s=86400, clock=clock, timer=clock)
        assert off.alerts(router) == [] and off.runs == 0
    finally:
        router.close()


def test_a_failing_scan_keeps_the_last_answer_and_waits_its_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = _seed(tmp_path)
    clock = FakeClock(time.time())
    router = Router(database_url=db, catalog=demo_catalog(), embedder=HashEmbedder())
    try:
        check = FixedModelCheck(every_s=600, window_s=86400, clock=clock, timer=clock)
        first = check.alerts(router)
        assert first

        def broken(*args: object, **kwargs: object) -> list[object]:
            raise OperationalError("SELECT", {}, Exception("database gone"))

        monkeypatch.setattr(checks, "fixed_model_alerts", broken)
        clock.advance(600)
        check.alerts(router)
        check.wait()
        assert check.failures == 1 and check.alerts(router) == first  # the last answer
        check.alerts(router)
        check.wait()
        assert check.runs == 2  # no new scan on every poll after a failure
        fresh = FixedModelCheck(every_s=600, window_s=86400, clock=clock, timer=clock)
        assert fresh.alerts(router) == [] and fresh.failures == 1  # never answered: none
    finally:
        router.close()


def test_alerts_over_http_in_process(tmp_path: Path) -> None:
    db, catalog = _seed(tmp_path)
    keys = KeyStore(db)
    admin = {"Authorization": f"Bearer {keys.create(name='ops', scope='admin')[1]}"}
    keys.close()
    expected = _library(db)
    assert [a["model"] for a in expected] == ["openlang/polyglot"]
    settings = Settings(database_url=db, embedder="hash", catalog_path=catalog,
                        reward_wait_s=1e9, learn_interval_s=0.05)
    with TestClient(create_app(settings)) as http:
        body = http.get(ALERTS, headers=admin).json()
        assert [a for a in body if a["kind"] == "fixed_model"] == expected
        assert http.get(ALERTS, headers=admin).json() == body
        assert http.app.state.fixed_model_check.runs == 1  # type: ignore[attr-defined]
    off = Settings(database_url=db, embedder="hash", catalog_path=catalog,
                   reward_wait_s=1e9, fixed_model_alert_every_s=0)
    with TestClient(create_app(off)) as http:
        assert all(a["kind"] != "fixed_model" for a in http.get(ALERTS, headers=admin).json())


def test_alerts_on_the_real_server(tmp_path: Path) -> None:
    db, catalog = _seed(tmp_path)
    srv = make_server(tmp_path, BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_CATALOG_PATH=catalog,
                      BANDIT_ROUTER_REWARD_WAIT_S="1e9")
    assert srv.database_url == db
    srv.start()
    try:
        r = httpx.get(f"{srv.url}{ALERTS}", headers={"Authorization": f"Bearer {srv.admin_key}"},
                      timeout=60)
        assert r.status_code == 200
        assert [a for a in r.json() if a["kind"] == "fixed_model"] == _library(db)
        r = httpx.get(f"{srv.url}{ALERTS}",
                      headers={"Authorization": f"Bearer {srv.client_key}"})
        assert r.status_code == 403
    finally:
        srv.stop()

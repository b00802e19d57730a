"""Cost reports over HTTP (GET /v1/admin/reports/cost, admin): in process and against the
real server; real VW, real SQLite. The data is logged by a library Router on the service's
database first, so the service must answer exactly what the library reports."""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bandit_router import Router, RouterConfig
from bandit_router.core._store import Store
from bandit_router.eval.fixed import fixed_models
from bandit_router.eval.reports import CostReport, cost_report, parse_time
from bandit_router.eval.simulation import HashEmbedder, demo_catalog
from feedback_api import KeyStore, Settings, create_app
from feedback_api.routers import reports
from tests.eval.test_reports import DAY1, DAY2, build_traffic

from ..conftest import FakeClock
from .conftest import make_server

PATH = "/v1/admin/reports/cost"


@functools.cache
def _wired() -> bool:
    """Whether feedback_api/app.py includes the reports router (a throwaway app's schema)."""
    return PATH in create_app(Settings(database_url="sqlite://")).openapi()["paths"]


def _app(settings: Settings) -> FastAPI:
    """The service's app; with the reports router included here until app.py includes it."""
    app = create_app(settings)
    if not _wired():
        app.include_router(reports.router)
    return app


def _seed(tmp: Path) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """A database with keys and the traffic of tests/eval/test_reports.py; a demo catalog file."""
    db = f"sqlite:///{tmp / 'service.db'}"
    keys = KeyStore(db)
    admin = {"Authorization": f"Bearer {keys.create(name='ops', scope='admin')[1]}"}
    client = {"Authorization": f"Bearer {keys.create(name='app', scope='client')[1]}"}
    keys.close()
    clock = FakeClock()
    router = Router(database_url=db, catalog=demo_catalog(), embedder=HashEmbedder(),
                    config=RouterConfig(cost_weight=50.0), clock=clock)
    build_traffic(router, clock)
    router.close()
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    return db, str(catalog), admin, client


def _library(db: str, **kwargs: object) -> CostReport:
    store = Store(db)
    try:
        return cost_report(store, **kwargs)  # type: ignore[arg-type]
    finally:
        store.close()


def test_cost_report_in_process(tmp_path: Path) -> None:
    db, catalog, admin, client = _seed(tmp_path)
    settings = Settings(database_url=db, embedder="hash", catalog_path=catalog,
                        reward_wait_s=1e9, learn_interval_s=0.05)  # nothing expires here
    with TestClient(_app(settings)) as http:
        r = http.get(PATH, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == _library(db).to_dict()
        assert r.json()["group_by"] == ["day", "model"]

        r = http.get(PATH, params={"since": DAY2, "until": DAY2, "by": "key,provider",
                                   "reference": "budget/tiny"}, headers=admin)
        assert r.status_code == 200
        want = _library(db, since=parse_time(DAY2), until=parse_time(DAY2, end=True),
                        group_by=("key", "provider"), reference="budget/tiny")
        assert CostReport.from_dict(r.json()) == want and want.reference_fallbacks == 2

        r = http.get(PATH, params={"by": "day,key", "format": "csv"}, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.text == _library(db, group_by=("day", "key")).to_csv()
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["day"] for row in rows] == [DAY1, DAY1, DAY2, DAY2, DAY2, "(total)"]
        assert int(rows[-1]["requests"]) == 7

        # a decision made over HTTP is traffic too
        d = http.post("/v1/select", json={"task": "Translate 'Hello' to French"},
                      headers=client).json()
        r = http.get(PATH, params={"by": "model"}, headers=admin).json()
        assert r["total"]["requests"] == 8
        assert f"{d['provider']}/{d['model']}" in {row["model"] for row in r["rows"]}

        # admin only; errors in the one shape
        assert http.get(PATH, headers=client).status_code == 403
        assert http.get(PATH).status_code == 401
        for params in ({"by": "day,week"}, {"since": "yesterday"}, {"since": DAY2, "until": DAY1},
                       {"reference": "nope"}, {"reference": "unknown/model"},
                       {"since": "1e400"}):
            r = http.get(PATH, params=params, headers=admin)
            assert r.status_code == 422, params
            assert r.json()["error"]["type"] == "InvalidInputError"
        assert http.get(PATH, params={"format": "xml"}, headers=admin).status_code == 422
        schema = http.get("/openapi.json").json()["paths"][PATH]["get"]["responses"]["200"]
        assert set(schema["content"]) == {"application/json", "text/csv"}


FIXED = "/v1/admin/reports/fixed-models"


def _fixed(db: str, **kwargs: object) -> dict[str, object]:
    store = Store(db)
    try:
        return fixed_models(store, **kwargs).to_dict()  # type: ignore[arg-type]
    finally:
        store.close()


def test_fixed_models_report_in_process(tmp_path: Path) -> None:
    db, catalog, admin, client = _seed(tmp_path)
    settings = Settings(database_url=db, embedder="hash", catalog_path=catalog,
                        reward_wait_s=1e9, learn_interval_s=0.05)
    with TestClient(_app(settings)) as http:
        r = http.get(FIXED, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert body == _fixed(db) and body["level"] == 0.95
        assert body["events"] > 0 and body["rows"]
        # every model eligible in the traffic has a row; a handful of requests: no verdict
        assert {row["verdict"] for row in body["rows"]} == {"no evidence"}
        r = http.get(FIXED, params={"since": DAY2, "until": DAY2, "level": "0.99"},
                     headers=admin)
        assert r.status_code == 200
        assert r.json() == _fixed(db, since=parse_time(DAY2), until=parse_time(DAY2, end=True),
                                  level=0.99)
        assert r.json()["events"] < body["events"]
        r = http.get(FIXED, params={"arm": "elsewhere"}, headers=admin)
        assert r.status_code == 200 and r.json()["events"] == 0
        assert http.get(FIXED, headers=client).status_code == 403
        assert http.get(FIXED).status_code == 401
        for params in ({"level": "0.5"}, {"since": DAY2, "until": DAY1}, {"since": "soon"}):
            assert http.get(FIXED, params=params, headers=admin).status_code == 422, params


@pytest.mark.skipif(not _wired(), reason="feedback_api/app.py does not include "
                    "feedback_api.routers.reports yet")
def test_cost_report_on_the_real_server(tmp_path: Path) -> None:
    db, catalog, _, _ = _seed(tmp_path)
    srv = make_server(tmp_path, BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_CATALOG_PATH=catalog, BANDIT_ROUTER_REWARD_WAIT_S="1e9")
    assert srv.database_url == db  # the server runs on the seeded database
    admin = {"Authorization": f"Bearer {srv.admin_key}"}
    srv.start()
    try:
        r = httpx.get(f"{srv.url}{PATH}", params={"by": "day,key,model"}, headers=admin)
        assert r.status_code == 200
        assert r.json() == _library(db, group_by=("day", "key", "model")).to_dict()
        r = httpx.get(f"{srv.url}{PATH}", params={"format": "csv", "since": DAY1,
                                                  "until": DAY1}, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.text == _library(db, since=parse_time(DAY1),
                                  until=parse_time(DAY1, end=True)).to_csv()
        r = httpx.get(f"{srv.url}{PATH}", headers={"Authorization": f"Bearer {srv.client_key}"})
        assert r.status_code == 403
        r = httpx.get(f"{srv.url}{FIXED}", headers=admin)
        assert r.status_code == 200 and r.json() == _fixed(db)
    finally:
        srv.stop()

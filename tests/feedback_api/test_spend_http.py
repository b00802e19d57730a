"""Spend control over HTTP: budgets (402/429 with reset time), alerts, load balancing and
the price file, against a real server of its own (budgets would disturb the shared one)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Server, make_server

pytestmark = pytest.mark.slow

MODEL = "openai/gpt-4o-mini"


def _prices(path: Path, factor: float) -> None:
    source = Path(__file__).resolve().parents[2] / "bandit_router/core/data/default_catalog.json"
    table = {}
    for m in json.loads(source.read_text())["models"]:
        scale = factor if f"{m['provider']}/{m['model']}" == MODEL else 1.0
        table[f"{m['provider']}/{m['model']}"] = {
            "litellm_provider": m["provider"], "mode": "chat",
            "input_cost_per_token": m["input_price_per_1m"] * scale / 1e6,
            "output_cost_per_token": m["output_price_per_1m"] * scale / 1e6}
    path.write_bytes(gzip.compress(json.dumps(table).encode()))


@pytest.fixture(scope="module")
def spend_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("spend")
    _prices(tmp / "prices.json.gz", 1.0)
    (tmp / "lb.json").write_text(json.dumps({
        "strategy": "round_robin", "allowed_fails": 2, "cooldown_s": 600,
        "deployments": [{"id": "east", "model": MODEL, "provider": "openai",
                         "api_base": "https://east.example/v1", "api_key_env": "EAST_KEY"},
                        {"id": "west", "model": MODEL, "provider": "openai",
                         "api_base": "https://west.example/v1"}]}))
    srv = make_server(tmp, BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_PRICE_FILE=str(tmp / "prices.json.gz"),
                      BANDIT_ROUTER_PRICE_FILE_INTERVAL_S="3600",
                      BANDIT_ROUTER_LOAD_BALANCING_FILE=str(tmp / "lb.json"))
    srv.start()
    yield srv
    srv.stop()


def _call(srv: Server, method: str, path: str, key: str, body: object = None,
          **params: str) -> httpx.Response:
    return httpx.request(method, f"{srv.url}{path}", json=body, params=params, timeout=30,
                         headers={"Authorization": f"Bearer {key}"})


def test_budgets_refuse_with_402_or_429_and_say_when(spend_server: Server) -> None:
    srv = spend_server
    assert _call(srv, "PUT", "/v1/admin/budgets", srv.client_key,
                 {"daily_limit": 1.0}).status_code == 403
    bad = _call(srv, "PUT", "/v1/admin/budgets", srv.admin_key, {"scope": "team"})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "InvalidInputError"
    r = _call(srv, "PUT", "/v1/admin/budgets", srv.admin_key, {"per_request_limit": 1e-12})
    assert r.status_code == 200 and r.json()[0]["window"] == "request"
    r = _call(srv, "POST", "/v1/select", srv.client_key, {"task": "Summarise this memo"})
    assert r.status_code == 402
    error = r.json()["error"]
    assert error["type"] == "BudgetExceededError" and error["details"]["window"] == "request"
    _call(srv, "DELETE", "/v1/admin/budgets", srv.admin_key, scope="router")
    _call(srv, "PUT", "/v1/admin/budgets", srv.admin_key, {"daily_limit": 1e-9})
    asked = time.time()  # the window in force when the server decides ends after this
    r = _call(srv, "POST", "/v1/select", srv.client_key, {"task": "Summarise this memo"})
    assert r.status_code == 429
    assert r.json()["error"]["details"]["resets_at"] > asked
    assert 0 < int(r.headers["Retry-After"]) <= 86_400
    alerts = _call(srv, "GET", "/v1/admin/budgets/alerts", srv.admin_key).json()
    assert any(a["threshold"] == 1.0 and a["window"] == "day" for a in alerts)
    assert _call(srv, "DELETE", "/v1/admin/budgets", srv.admin_key,
                 scope="router").json() == {"removed": 1}
    _call(srv, "PUT", "/v1/admin/budgets", srv.admin_key, {"daily_limit": 100.0})
    # not the load-balanced model: a decision for it would move the round robin on, and
    # the next test expects its first pick to be the first deployment
    d = _call(srv, "POST", "/v1/select", srv.client_key,
              {"task": "Summarise this memo", "constraints": {"excluded_models": [MODEL]}})
    assert d.status_code == 200 and d.json()["deployment"] is None
    status = _call(srv, "GET", "/v1/admin/budgets", srv.admin_key).json()
    assert status[0]["reserved_usd"] == pytest.approx(d.json()["estimated_cost_usd"])
    _call(srv, "DELETE", "/v1/admin/budgets", srv.admin_key, scope="router")


def test_deployments_balance_and_cool_down(spend_server: Server) -> None:
    srv = spend_server
    only = {"allowed_models": [MODEL]}
    picks = []
    for i in range(4):
        d = _call(srv, "POST", "/v1/select", srv.client_key,
                  {"task": f"Translate sentence {i}", "constraints": only}).json()
        picks.append(d["deployment"]["id"])
        error = {"error": "server_error"} if d["deployment"]["id"] == "east" else \
            {"quality": 0.9, "latency_s": 0.4}
        assert _call(srv, "POST", f"/v1/events/{d['event_id']}/reward", srv.client_key,
                     error).status_code == 200
    assert picks == ["east", "west", "east", "west"]
    status = {s["id"]: s for s in
              _call(srv, "GET", "/v1/admin/deployments", srv.admin_key).json()}
    assert status["east"]["healthy"] is False and status["west"]["healthy"] is True
    assert status["east"]["api_base"] == "https://east.example/v1"
    d = _call(srv, "POST", "/v1/select", srv.client_key,
              {"task": "Translate one more", "constraints": only}).json()
    assert d["deployment"]["id"] == "west"
    bad = _call(srv, "PUT", "/v1/admin/load-balancing", srv.admin_key,
                {"deployments": [{"id": "x", "model": "nobody/none", "provider": "x"}]})
    assert bad.status_code == 404 and bad.json()["error"]["type"] == "UnknownModelError"


def test_price_file_reload(spend_server: Server, tmp_path: Path) -> None:
    srv = spend_server
    path = Path(srv.env["BANDIT_ROUTER_PRICE_FILE"])
    _prices(path, 10.0)
    r = _call(srv, "POST", "/v1/admin/prices/reload", srv.admin_key)
    assert r.status_code == 200 and list(r.json()["changed"]) == [MODEL]
    models = {m["id"]: m["catalog"] for m in
              _call(srv, "GET", "/v1/models", srv.admin_key).json()["data"]}
    assert models[MODEL]["input_price_per_1m"] == pytest.approx(1.5)
    assert _call(srv, "POST", "/v1/admin/prices/reload", srv.client_key).status_code == 403


def test_client_raises_budget_exceeded_with_its_details(spend_server: Server) -> None:
    from bandit_router import BudgetExceededError
    from bandit_router.client import RouterClient

    srv = spend_server
    _call(srv, "PUT", "/v1/admin/budgets", srv.admin_key, {"hourly_limit": 1e-9})
    client = RouterClient(srv.url, srv.client_key)
    try:
        asked = time.time()  # the hour in force when the server decides ends after this
        with pytest.raises(BudgetExceededError) as info:
            client.select("Summarise this memo")
        assert info.value.window == "hour" and info.value.scope == "router"
        assert info.value.resets_at is not None and info.value.resets_at > asked
    finally:
        client.close()
        _call(srv, "DELETE", "/v1/admin/budgets", srv.admin_key, scope="router")


def test_metrics_show_budgets_and_deployment_health(spend_server: Server) -> None:
    srv = spend_server
    _call(srv, "PUT", "/v1/admin/budgets", srv.admin_key, {"daily_limit": 50.0})
    try:
        text = _call(srv, "GET", "/metrics", srv.admin_key).text
        assert 'bandit_router_budget_limit_usd{scope="router",window="day"} 50.0' in text
        assert 'bandit_router_budget_used_usd{scope="router",window="day"}' in text
        assert 'bandit_router_deployment_healthy{deployment="west"' in text
    finally:
        _call(srv, "DELETE", "/v1/admin/budgets", srv.admin_key, scope="router")

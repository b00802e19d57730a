"""The dashboard (issue #18) in headless Chromium (Debian's ``chromium``, which scripts/test.sh
installs): a server that has served real traffic (through ``/v1/select`` and through the
gateway, by the ``openai`` SDK, to an upstream process), the page loaded with an admin key,
its figures checked against the API, and a screenshot saved (to
``$BANDIT_ROUTER_SCREENSHOTS`` when set: docs/img/ holds the one the docs show)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from bandit_router.eval.simulation import SyntheticWorkload

from .conftest import Server, make_server, running_upstreams

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """An OpenAI-compatible upstream process that answers."""
    with running_upstreams("ok") as (url,):
        yield url


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("dashboard")
    balancing = tmp / "balancing.json"
    balancing.write_text(json.dumps({"strategy": "round_robin", "allowed_fails": 1,
                                     "cooldown_s": 3600, "deployments": [
        {"id": "tiny-a", "model": "budget/tiny", "provider": "host-a"},
        {"id": "tiny-b", "model": "budget/tiny", "provider": "host-b"},
        {"id": "large", "model": "frontier/large", "provider": "frontier",
         "api_base": f"{upstream}/v1"}]}))
    catalog = tmp / "catalog.json"
    from bandit_router.eval.simulation import demo_catalog

    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    srv = make_server(tmp, BANDIT_ROUTER_EMBEDDER="hash", BANDIT_ROUTER_CATALOG_PATH=str(catalog),
                      BANDIT_ROUTER_LOAD_BALANCING_FILE=str(balancing))
    srv.start()
    try:
        _serve_traffic(srv)
        yield srv
    finally:
        srv.stop()


def _serve_traffic(srv: Server) -> None:
    """Real traffic: 80 decisions through /v1/select (a fifth in an experiment, one failed
    call on a deployment, some unusable answers), then 12 through the gateway."""
    admin = {"Authorization": f"Bearer {srv.admin_key}"}
    client = {"Authorization": f"Bearer {srv.client_key}"}
    httpx.put(f"{srv.url}/v1/admin/budgets", json={"daily_limit": 5.0}, headers=admin)
    httpx.post(f"{srv.url}/v1/experiments", headers=admin, json={
        "name": "explore", "arms": {"control": {}, "more": {"thompson_scale": 1.0}}})
    # one of budget/tiny's deployments fails (allowed_fails=1): it cools down
    d = httpx.post(f"{srv.url}/v1/select", headers=client, json={
        "task": "A failing call", "constraints": {"allowed_models": ["budget/tiny"]}}).json()
    assert d["deployment"]["model"] == "budget/tiny"
    assert httpx.post(f"{srv.url}/v1/events/{d['event_id']}/reward", headers=client,
                      json={"error": "server_error", "latency_s": 0.5}).status_code == 200
    wl = SyntheticWorkload(seed=3)
    for i in range(79):
        task = wl.sample_task()
        body = {"task": task.text} if i % 4 else {"task": task.text, "experiment": "explore",
                                                   "unit_key": f"u{i}"}
        d = httpx.post(f"{srv.url}/v1/select", json=body, headers=client).json()
        key = f"{d['provider']}/{d['model']}"
        o = wl.outcome(task, key)
        reward = {"quality": o.quality, "cost_usd": o.cost_usd, "latency_s": o.latency_s}
        if i % 7 == 3:  # answers the app could not use: over 10% failed, an alert
            reward = {"error": "invalid_response", "latency_s": 0.5}
        assert httpx.post(f"{srv.url}/v1/events/{d['event_id']}/reward", json=reward,
                          headers=client).status_code == 200
    # an OpenAI SDK app through the gateway: every call observed, half of them rated later
    sdk = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=srv.client_key, max_retries=0)
    for i in range(12):
        raw = sdk.chat.completions.with_raw_response.create(
            model="frontier/large", messages=[{"role": "user", "content": f"Question {i}?"}])
        if i % 2:
            assert httpx.post(
                f"{srv.url}/v1/events/{raw.headers['x-bandit-router-event-id']}/reward",
                json={"thumbs": "up"}, headers=client).status_code == 200
    deadline = time.monotonic() + 30  # the main router learns the 66 outside the experiment
    while httpx.get(f"{srv.url}/v1/stats", headers=admin).json()["policy_version"] < 66:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _chromium(*args: str) -> str:
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--virtual-time-budget=10000", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: scripts/test.sh installs Debian's")
def test_the_dashboard_shows_what_the_api_says(busy: Server, tmp_path: Path) -> None:
    url = f"{busy.url}/dashboard#key={busy.admin_key}"
    dom = _chromium("--dump-dom", url)
    assert 'data-loaded="yes"' in dom, dom[-3000:]
    figures = dict(re.findall(r'data-figure="([^"]+)"[^>]*>([^<]*)<', dom))
    stats = httpx.get(f"{busy.url}/v1/stats",
                      headers={"Authorization": f"Bearer {busy.admin_key}"}).json()
    assert int(figures["decisions"]) == stats["decisions"] >= 92
    assert int(figures["rewarded"]) == stats["rewarded"]
    assert int(figures["policy_version"]) == stats["policy_version"]
    for model in stats["models"]:
        assert int(figures[f"decisions:{model['model_key']}"]) == model["decisions"]
    deployments = httpx.get(f"{busy.url}/v1/admin/deployments",
                            headers={"Authorization": f"Bearer {busy.admin_key}"}).json()
    for d in deployments:
        assert figures[f"health:{d['id']}"] == ("healthy" if d["healthy"] else "cooling down")
    assert "cooling down" in {figures[f"health:{d['id']}"] for d in deployments}
    assert figures["budget:router:day"] != "–" and "explore" in dom and "control" in dom
    by_hour = [int(v) for k, v in figures.items() if k.startswith("hour:")]
    assert sum(by_hour) == stats["decisions"]  # traffic over time adds up to the total
    # spend and savings over every decision, the gateway's unrated calls at their observed
    # cost: what the cost report says
    report = httpx.get(f"{busy.url}/v1/admin/reports/cost", params={"by": "model"},
                       headers={"Authorization": f"Bearer {busy.admin_key}"}).json()
    large = next(r for r in report["rows"] if r["model"] == "frontier/large")
    assert large["requests"] >= 12 and large["pending"] >= 6 and large["reported_usd"] > 0
    total = report["total"]
    assert figures["spend_usd"] == f"{round(total['spend_usd'], 6):g}"
    assert figures["cost_saved_pct"] == f"{round(total['savings_pct'], 1):g}%"
    assert figures["reference_model"] == report["reference_model"]
    assert figures["quality_kept"] == f"{round(report['quality_kept'], 3):g}"
    # health alerts: what the API says holds now, the failed-call share among them
    health = httpx.get(f"{busy.url}/v1/admin/alerts",
                       headers={"Authorization": f"Bearer {busy.admin_key}"}).json()
    assert "error_rate" in {a["kind"] for a in health}
    assert {k.split(":")[1] for k in figures if k.startswith("alert:")} == {
        a["kind"] for a in health}  # (a fixed_model alert's figure names its model too)
    # no key: the page asks for one and shows nothing
    bare = _chromium("--dump-dom", f"{busy.url}/dashboard")
    assert 'data-loaded="yes"' not in bare and 'id="login"' in bare
    shots = Path(os.environ.get("BANDIT_ROUTER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    _chromium(f"--screenshot={shots / 'dashboard.png'}", "--window-size=1280,1700", url)
    assert (shots / "dashboard.png").stat().st_size > 10_000


def test_the_page_is_served_without_a_cdn_under_a_strict_policy(busy: Server) -> None:
    r = httpx.get(f"{busy.url}/dashboard")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert not re.search(r"(src|href)=\"(https?:)?//", r.text)  # every asset is inline
    policy = r.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: scripts/test.sh installs Debian's")
def test_the_api_docs_render_from_local_files(busy: Server) -> None:
    """/docs and /redoc load Swagger UI and ReDoc from the service, not a CDN (issue #18 saw
    /docs render blank offline)."""
    for path in ("/docs", "/redoc"):
        page = httpx.get(f"{busy.url}{path}").text
        assert "/docs-static/" in page and not re.search(r"(src|href)=\"https?://", page)
    dom = _chromium("--dump-dom", f"{busy.url}/docs")
    assert "/v1/chat/completions" in dom and "/v1/select" in dom  # rendered, operations shown

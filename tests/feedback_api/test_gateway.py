"""The OpenAI-compatible gateway (issue #18), with the real ``openai`` SDK (sync, async,
streaming) against a real server whose deployments are upstream HTTP processes speaking the
OpenAI protocol: one that answers, one that fails (500), one rate-limited (429), one slow."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from bandit_router.eval.simulation import demo_catalog
from feedback_api.timing import durations

from .conftest import Server, make_server, running_upstreams

pytestmark = pytest.mark.slow

UPSTREAM = Path(__file__).with_name("upstream.py")
MODES = {"ok": "frontier/large", "fail": "budget/tiny", "ratelimit": "opencode/coder",
         "slow": "openlang/polyglot"}  # midtier/generalist has no api_base: never called


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, str]]:
    with running_upstreams(*MODES) as urls:
        yield dict(zip(MODES, urls, strict=True))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            upstreams: dict[str, str]) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("gateway")
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    deployments = [{"id": mode, "model": model, "provider": model.split("/")[0],
                    "api_base": f"{upstreams[mode]}/v1", "api_key_env": "UPSTREAM_KEY"}
                   for mode, model in MODES.items()]
    balancing = tmp / "balancing.json"
    balancing.write_text(json.dumps({"strategy": "round_robin", "deployments": deployments,
                                     "allowed_fails": 2, "cooldown_s": 600}))
    srv = make_server(tmp, BANDIT_ROUTER_EMBEDDER="hash", BANDIT_ROUTER_CATALOG_PATH=str(catalog),
                      BANDIT_ROUTER_LOAD_BALANCING_FILE=str(balancing),
                      BANDIT_ROUTER_GATEWAY_TIMEOUT_S="1", UPSTREAM_KEY="sk-upstream-secret")
    srv.start()
    yield srv
    srv.stop()


def _sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.client_key, max_retries=0)


def _event(server: Server, event_id: str) -> dict:
    return httpx.get(f"{server.url}/v1/events/{event_id}",
                     headers={"Authorization": f"Bearer {server.client_key}"}).json()


def _requests(server: Server, status: str) -> float:
    """The service's count of chat completion requests answered with ``status``."""
    text = httpx.get(f"{server.url}/metrics",
                     headers={"Authorization": f"Bearer {server.admin_key}"}).text
    found = re.search(r'^bandit_router_http_requests_total\{method="POST",'
                      r'route="/v1/chat/completions",status="' + status + r'"\} (\S+)$',
                      text, re.M)
    return float(found.group(1)) if found else 0.0


def _health(server: Server, deployment: str) -> dict:
    return next(d for d in httpx.get(
        f"{server.url}/v1/admin/deployments",
        headers={"Authorization": f"Bearer {server.admin_key}"}).json() if d["id"] == deployment)


def test_a_concrete_model_is_passed_through_logged_and_observed(
        gateway: Server, upstreams: dict[str, str]) -> None:
    raw = _sdk(gateway).chat.completions.with_raw_response.create(
        model="frontier/large", messages=[{"role": "user", "content": "Name a river."}])
    answer = raw.parse()
    assert answer.choices[0].message.content == "large says: Name a river."
    event_id = raw.headers["x-bandit-router-event-id"]
    assert raw.headers["x-bandit-router-model"] == "frontier/large"
    assert float(raw.headers["x-bandit-router-probability"]) == 1.0
    # the decision's time (embedding the messages, then the rest), not the upstream's
    timing = durations(raw.headers["server-timing"])
    assert set(timing) == {"embed", "route"} and timing["route"] > 0.0
    assert timing["embed"] >= 0.0
    cost = float(raw.headers["x-bandit-router-cost-usd"])
    usage = answer.usage
    assert usage is not None
    assert cost == pytest.approx((usage.prompt_tokens * 5.0 + usage.completion_tokens * 15.0)
                                 / 1e6, rel=1e-5)
    call = httpx.get(f"{upstreams['ok']}/calls").json()[-1]
    assert call == {"model": "large", "stream": False,
                    "authorization": "Bearer sk-upstream-secret"}
    # the quality later: the observed cost and tokens are what is learned with it
    r = httpx.post(f"{gateway.url}/v1/events/{event_id}/reward", json={"quality": 0.9},
                   headers={"Authorization": f"Bearer {gateway.client_key}"})
    assert r.status_code == 200 and r.json()["cost_usd"] == pytest.approx(cost, rel=1e-5)
    reward = _event(gateway, event_id)["reward"]
    assert reward["output_tokens"] == usage.completion_tokens and reward["latency_s"] > 0


def test_failures_fall_back_and_cool_the_deployment_down(
        gateway: Server, upstreams: dict[str, str]) -> None:
    sdk = _sdk(gateway)
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}

    def calls(mode: str) -> int:
        return len(httpx.get(f"{upstreams[mode]}/calls").json())

    def healthy(deployment: str) -> bool:
        return bool(_health(gateway, deployment)["healthy"])

    for mode, model in (("fail", "budget/tiny"), ("ratelimit", "opencode/coder")):
        # the failing model first (its provider preferred), the working one behind it
        ask = {"bandit_router": {"constraints": {
            "allowed_models": [model, "frontier/large"],
            "preferred_providers": [model.split("/")[0]]}}}
        for i in range(2):  # allowed_fails=2: two failures, each fallen back from
            raw = sdk.chat.completions.with_raw_response.create(
                model="bandit-router/auto", extra_body=ask,
                messages=[{"role": "user", "content": f"{mode} {i}?"}])
            assert raw.headers["x-bandit-router-model"] == "frontier/large"
            assert raw.parse().choices[0].message.content.endswith(f"{mode} {i}?")
            assert calls(mode) == i + 1
        assert not healthy(mode) and healthy("ok")
        raw = sdk.chat.completions.with_raw_response.create(  # cooling down: not called
            model="bandit-router/auto", extra_body=ask,
            messages=[{"role": "user", "content": "again?"}])
        assert raw.headers["x-bandit-router-model"] == "frontier/large" and calls(mode) == 2
    # a model whose only deployment is cooling down: nothing to call
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="opencode/coder",
                                    messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code in (422, 502)
    failed = httpx.get(f"{gateway.url}/v1/stats", headers=admin).json()
    assert failed["rewarded"] >= 4  # the failed attempts are logged decisions with outcomes


def test_a_timeout_falls_back(gateway: Server) -> None:
    raw = _sdk(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Slowly?"}],
        extra_body={"bandit_router": {"constraints": {"allowed_models": [
            "openlang/polyglot", "frontier/large"]}}})
    assert raw.headers["x-bandit-router-model"] == "frontier/large"


def test_a_stream_falls_back_on_a_timeout_before_its_first_byte(gateway: Server) -> None:
    """The upstream that stalls is tried first (its provider preferred); the stream comes
    from the next model, and the timeout counts toward the stalling deployment's cooldown."""
    before = _health(gateway, "slow")
    with _sdk(gateway).chat.completions.with_streaming_response.create(
            model="bandit-router/auto", stream=True,
            messages=[{"role": "user", "content": "Stream slowly?"}],
            extra_body={"bandit_router": {"constraints": {
                "allowed_models": ["openlang/polyglot", "frontier/large"],
                "preferred_providers": ["openlang"]}}}) as response:
        assert response.headers["x-bandit-router-model"] == "frontier/large"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "large says: Stream slowly?"
    after = _health(gateway, "slow")
    assert (after["recent_failures"] == before["recent_failures"] + 1
            or (before["healthy"] and not after["healthy"]))


def test_a_stream_broken_off_is_a_failed_call(gateway: Server) -> None:
    """An upstream that drops the connection mid-stream: the caller's stream breaks too
    (the SDK raises rather than returning half an answer) and the decision's outcome is a
    server error, as for a 5xx."""
    headers: dict[str, str] = {}
    broken_before, whole_before = _requests(gateway, "500"), _requests(gateway, "200")
    ask = _sdk(gateway).chat.completions.with_streaming_response.create(
        model="frontier/large", stream=True,
        messages=[{"role": "user", "content": "break this answer off"}])
    # the SDK reports the broken transfer
    with pytest.raises(openai.APIConnectionError), ask as response:
        headers = dict(response.headers)
        for _ in response.parse():
            pass
    event_id = headers["x-bandit-router-event-id"]
    deadline = time.monotonic() + 5
    while _event(gateway, event_id)["reward"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    reward = _event(gateway, event_id)["reward"]
    assert reward is not None and reward["error"] == "server_error" and reward["quality"] == 0.0
    # the service's own metrics count it a failed request, not the 200 its first line said
    assert _requests(gateway, "500") == broken_before + 1
    assert _requests(gateway, "200") == whole_before


def test_experiments_and_their_arms_are_models(gateway: Server) -> None:
    """``bandit-router/<experiment>`` routes with the arm of the request's ``user`` (sticky);
    ``bandit-router/<experiment>/<arm>`` with that arm; both are in the model list."""
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    spec = {"name": "strong-or-not", "arms": {
        "strong": {"fixed_model": "frontier/large"},
        "bandit": {"models": ["frontier/large", "openlang/polyglot"]}}}
    assert httpx.post(f"{gateway.url}/v1/experiments", json=spec,
                      headers=admin).status_code == 201
    sdk = _sdk(gateway)
    listed = [m.id for m in sdk.models.list()]
    assert {"bandit-router/strong-or-not", "bandit-router/strong-or-not/strong",
            "bandit-router/strong-or-not/bandit"} <= set(listed)
    raw = sdk.chat.completions.with_raw_response.create(
        model="bandit-router/strong-or-not/strong",
        messages=[{"role": "user", "content": "Which arm?"}])
    event = _event(gateway, raw.headers["x-bandit-router-event-id"])
    assert (event["experiment"], event["arm"], event["model"]) == (
        "strong-or-not", "strong", "large")
    arms = set()
    for user in ("ada", "ada", "grace", "grace"):
        raw = sdk.chat.completions.with_raw_response.create(
            model="bandit-router/strong-or-not", user=user,
            messages=[{"role": "user", "content": f"Hello from {user}"}])
        event = _event(gateway, raw.headers["x-bandit-router-event-id"])
        assert event["experiment"] == "strong-or-not" and event["unit_key"] == user
        arms.add((user, event["arm"]))
    assert len(arms) == 2  # one arm per user, whichever it is
    for model in ("bandit-router/strong-or-not/nope", "bandit-router/no-such-experiment"):
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "?"}])


def test_an_arm_whose_models_fail_answers_502_and_a_promotion_reroutes_it(
        tmp_path: Path) -> None:
    """An arm pinned to a failing model has nothing to fall back to: 502 with the model
    tried (not 422). Once another arm is promoted, requests naming the old arm go to it."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    with running_upstreams("fail", "ok") as (failing, answering):
        balancing = tmp_path / "balancing.json"
        balancing.write_text(json.dumps({"deployments": [
            {"id": "tiny", "model": "budget/tiny", "provider": "budget",
             "api_base": f"{failing}/v1"},
            {"id": "large", "model": "frontier/large", "provider": "frontier",
             "api_base": f"{answering}/v1"}]}))
        srv = make_server(tmp_path, BANDIT_ROUTER_EMBEDDER="hash",
                          BANDIT_ROUTER_CATALOG_PATH=str(catalog),
                          BANDIT_ROUTER_LOAD_BALANCING_FILE=str(balancing))
        srv.start()
        try:
            admin = {"Authorization": f"Bearer {srv.admin_key}"}
            assert httpx.post(f"{srv.url}/v1/experiments", headers=admin, json={
                "name": "pin", "arms": {"tiny": {"fixed_model": "budget/tiny"},
                                        "large": {"fixed_model": "frontier/large"}}}
                              ).status_code == 201
            assert httpx.post(f"{srv.url}/v1/experiments", headers=admin, json={
                "name": "auto", "arms": {"a": {}, "b": {}}}).status_code == 422  # reserved
            sdk = _sdk(srv)
            ask = {"model": "bandit-router/pin/tiny",
                   "messages": [{"role": "user", "content": "Anyone?"}]}
            with pytest.raises(openai.APIStatusError) as caught:
                sdk.chat.completions.create(**ask)  # type: ignore[call-overload]
            assert caught.value.status_code == 502
            assert caught.value.response.json()["error"]["details"]["tried"] == ["budget/tiny"]
            assert httpx.post(f"{srv.url}/v1/experiments/pin/promote", headers=admin,
                              json={"arm": "large"}).status_code == 200
            raw = sdk.chat.completions.with_raw_response.create(**ask)
            assert raw.headers["x-bandit-router-model"] == "frontier/large"
            listed = {m.id for m in sdk.models.list()}
            assert "bandit-router/pin" in listed and "bandit-router/pin/tiny" not in listed
        finally:
            srv.stop()


def test_streaming_passes_through_and_is_observed(gateway: Server) -> None:
    sdk = _sdk(gateway)
    with sdk.chat.completions.with_streaming_response.create(
            model="frontier/large", stream=True,
            messages=[{"role": "user", "content": "Count to three."}]) as response:
        event_id = response.headers["x-bandit-router-event-id"]
        text, usage = "", None
        for chunk in response.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = chunk.usage or usage
    assert text == "large says: Count to three."
    assert usage is not None
    deadline = time.monotonic() + 5
    r = None
    while time.monotonic() < deadline:  # observed when the stream ended
        r = httpx.post(f"{gateway.url}/v1/events/{event_id}/reward", json={"quality": 1.0},
                       headers={"Authorization": f"Bearer {gateway.client_key}"})
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r is not None and r.status_code == 200
    assert r.json()["cost_usd"] == pytest.approx(
        (usage.prompt_tokens * 5.0 + usage.completion_tokens * 15.0) / 1e6, rel=1e-5)


def test_the_async_sdk_and_bad_requests(gateway: Server) -> None:
    async def ask() -> str:
        client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.client_key,
                                    max_retries=0)
        answer = await client.chat.completions.create(
            model="frontier/large", messages=[{"role": "user", "content": "Async?"}])
        await client.close()
        return answer.choices[0].message.content or ""

    assert asyncio.run(ask()) == "large says: Async?"
    listed = [m.id for m in _sdk(gateway).models.list()]  # the SDK's model list
    assert listed[0] == "bandit-router/auto" and "frontier/large" in listed
    # thumbs up or down instead of a score, on an observed event
    raw = _sdk(gateway).chat.completions.with_raw_response.create(
        model="frontier/large", messages=[{"role": "user", "content": "Thumbs?"}])
    event_id = raw.headers["x-bandit-router-event-id"]
    auth = {"Authorization": f"Bearer {gateway.client_key}"}
    for bad in ({"thumbs": "sideways"}, {"thumbs": "up", "quality": 1.0}):
        r = httpx.post(f"{gateway.url}/v1/events/{event_id}/reward", json=bad, headers=auth)
        assert r.status_code == 422, r.text
    r = httpx.post(f"{gateway.url}/v1/events/{event_id}/reward", json={"thumbs": "down"},
                   headers=auth)
    assert r.status_code == 200 and r.json()["quality"] == 0.0
    assert r.json()["cost_usd"] == pytest.approx(float(raw.headers["x-bandit-router-cost-usd"]),
                                                 rel=1e-5)
    sdk = _sdk(gateway)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="no-such-model",
                                    messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError):  # in the catalog, but nothing to call
        sdk.chat.completions.create(model="midtier/generalist",
                                    messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        sdk.chat.completions.create(model="auto", messages=[{"role": "system",
                                                             "content": "no user turn"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="br-wrong",
                      max_retries=0).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}])


def test_budgets_and_tenants_apply_to_the_gateway(gateway: Server) -> None:
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    raw = _sdk(gateway).chat.completions.with_raw_response.create(
        model="frontier/large", messages=[{"role": "user", "content": "Mine?"}])
    event_id = raw.headers["x-bandit-router-event-id"]
    other = {"Authorization": f"Bearer {gateway.other_client_key}"}  # another tenant
    assert httpx.get(f"{gateway.url}/v1/events/{event_id}", headers=other).status_code == 404
    assert httpx.post(f"{gateway.url}/v1/events/{event_id}/reward", json={"quality": 1.0},
                      headers=other).status_code == 404
    assert httpx.put(f"{gateway.url}/v1/admin/budgets", json={"per_request_limit": 1e-12},
                     headers=admin).status_code == 200
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            _sdk(gateway).chat.completions.create(
                model="bandit-router/auto", messages=[{"role": "user", "content": "Costly?"}])
        assert caught.value.status_code == 402
        assert caught.value.response.json()["error"]["type"] == "BudgetExceededError"
    finally:
        httpx.delete(f"{gateway.url}/v1/admin/budgets", params={"scope": "router"},
                     headers=admin)

"""End to end over HTTP, through the client: select, reward, learn, restart."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
import numpy as np
import pytest

from bandit_router import Constraints, Decision, RewardReceipt
from bandit_router.client import AsyncRouterClient, RouterClient
from bandit_router.eval.simulation import SyntheticWorkload
from feedback_api.timing import durations

from .conftest import Server, make_server

pytestmark = pytest.mark.slow


def wait_learned(admin: RouterClient, n: int, timeout: float = 30.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        stats = admin.get_routing_stats()
        if stats["policy_version"] >= n:
            return stats
        time.sleep(0.1)
    raise AssertionError(f"policy_version stayed at {stats['policy_version']} < {n}")


def test_select_reward_learn_through_the_client(server: Server) -> None:
    client = RouterClient(server.url, server.client_key)
    admin = RouterClient(server.url, server.admin_key)
    start = admin.get_routing_stats()["policy_version"]
    d = client.select("Translate 'Hello' to French",
                      constraints=Constraints(max_cost_usd=0.001, max_latency_s=10),
                      metadata={"request": "r-1"}, unit_key="user-7")
    assert isinstance(d, Decision) and d.estimated_cost_usd <= 0.001
    assert d.alternatives and 0 < d.probability <= 1
    receipt = client.reward(d.event_id, quality=0.92, cost_usd=0.00004, latency_s=0.8)
    assert isinstance(receipt, RewardReceipt) and receipt.quality == pytest.approx(0.92)
    stats = wait_learned(admin, start + 1)
    assert stats["rewarded"] >= 1
    record = client.get_event(d.event_id)
    assert record.status == "rewarded" and record.reward is not None
    assert record.reward["quality"] == pytest.approx(0.92)
    assert record.metadata == {"request": "r-1"}
    assert record.provider == d.provider and record.probability == pytest.approx(d.probability)
    # a window of the statistics, by the decision's time (as the dashboard asks)
    window = admin.get_routing_stats(since=np.float64(d.created_at))  # (numpy's too)
    assert window["since"] == pytest.approx(d.created_at) and window["decisions"] >= 1
    assert admin.get_routing_stats(since=time.time() + 3600)["decisions"] == 0
    bad = httpx.get(f"{server.url}/v1/stats", params={"since": "last tuesday"},
                    headers={"Authorization": f"Bearer {server.admin_key}"})
    assert bad.status_code == 422 and "period bound" in bad.json()["error"]["message"]


def test_the_policy_learns_over_http(server: Server) -> None:
    """The catalog's priors favour gpt-4o-mini; this app's judge finds the 8B model better
    except on code and maths. The router must learn that from rewards alone."""
    client = RouterClient(server.url, server.client_key)
    admin = RouterClient(server.url, server.admin_key)
    start = admin.get_routing_stats()["policy_version"]
    wl = SyntheticWorkload(seed=3)
    allowed = Constraints(allowed_models=["gpt-4o-mini", "llama-3.1-8b-instant"])
    rounds = 300
    right, prior_right = [], []
    for i in range(rounds):
        task = wl.sample_task()
        # named events: the exploration draws are the same on every run
        d = client.select(task.text, constraints=allowed, event_id=f"learns-over-http-{i}")
        best = "gpt-4o-mini" if task.topic in ("code", "maths") else "llama-3.1-8b-instant"
        client.reward(d.event_id, quality=0.9 if d.model == best else 0.2,
                      cost_usd=d.estimated_cost_usd)
        right.append(d.model == best)
        prior_right.append(best == "gpt-4o-mini")  # what following the prior would score
    wait_learned(admin, start + rounds)
    assert sum(right[-100:]) / 100 > 0.85
    assert sum(right[-100:]) / 100 > sum(prior_right[-100:]) / 100 + 0.4


def test_restart_then_reward_an_event_selected_before(tmp_path) -> None:
    srv = make_server(tmp_path)
    srv.start()
    try:
        client = RouterClient(srv.url, srv.client_key)
        done = client.select("Summarize the meeting notes about remote work.")
        client.reward(done.event_id, quality=0.7)
        pending = client.select("Tell me a fun fact about octopuses.")
        srv.stop()  # SIGTERM: learns what was stored, checkpoints, exits
        srv.start()
        client = RouterClient(srv.url, srv.client_key)
        admin = RouterClient(srv.url, srv.admin_key)
        assert admin.get_routing_stats()["policy_version"] == 1
        receipt = client.reward(pending.event_id, quality=0.95, latency_s=0.4)
        assert receipt.event_id == pending.event_id
        wait_learned(admin, 2)
        assert client.get_event(pending.event_id).reward["quality"] == pytest.approx(0.95)
    finally:
        srv.stop()


def test_async_client(server: Server) -> None:
    async def go() -> tuple[Decision, RewardReceipt]:
        async with AsyncRouterClient(server.url, server.client_key) as client:
            d = await client.select("What is the derivative of 3x^2?")
            r = await client.reward(d.event_id, quality=1.0)
            return d, r

    d, r = asyncio.run(go())
    assert r.event_id == d.event_id and d.model


def test_metrics_and_health(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert httpx.post(f"{server.url}/v1/select", json={"task": "Count the metrics"},  # one, at
                      headers={"Authorization": f"Bearer {server.client_key}"}  # least
                      ).status_code == 200
    text = httpx.get(f"{server.url}/metrics",
                     headers={"Authorization": f"Bearer {server.admin_key}"}).text
    assert "bandit_router_decisions_total{" in text
    assert 'bandit_router_http_requests_total{method="POST",route="/v1/select",status="200"}' \
        in text
    assert "bandit_router_spend_usd_total" in text and "bandit_router_policy_version" in text


def _server_timing(response: httpx.Response) -> dict[str, float]:
    return durations(response.headers["server-timing"])


def test_select_says_how_long_embedding_and_routing_took(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.client_key}"}
    task = f"Summarise the timing of request {uuid.uuid4().hex}"
    first = httpx.post(f"{server.url}/v1/select", json={"task": task}, headers=auth)
    assert first.status_code == 200
    timing = _server_timing(first)
    assert set(timing) == {"embed", "route"}
    assert timing["embed"] > 0.5 and timing["route"] > 0.0  # a new task: MiniLM ran
    again = _server_timing(httpx.post(f"{server.url}/v1/select", json={"task": task},
                                      headers=auth))
    assert again["embed"] < 0.5 * timing["embed"]  # the same task: the router's cache
    text = httpx.get(f"{server.url}/metrics",
                     headers={"Authorization": f"Bearer {server.admin_key}"}).text
    counts = {}
    for part in ("embed", "route"):
        found = re.search(r'^bandit_router_select_seconds_count\{part="' + part
                          + r'"\} (\S+)$', text, re.M)
        assert found is not None, part
        counts[part] = float(found.group(1))
    assert counts["embed"] == counts["route"] >= 2


def test_models_and_live_pricing(server: Server) -> None:
    admin = httpx.Client(base_url=server.url,
                         headers={"Authorization": f"Bearer {server.admin_key}"})
    listed = httpx.get(f"{server.url}/v1/models",  # OpenAI's format, for any key
                       headers={"Authorization": f"Bearer {server.client_key}"}).json()
    assert listed["object"] == "list" and listed["data"][0]["id"] == "bandit-router/auto"
    models = [m["catalog"] for m in listed["data"] if m["catalog"]]
    assert any(m["model"] == "gpt-4o-mini" for m in models)
    # then the experiments (routed models, as bandit-router/auto), then the catalog
    assert all(m["id"] == f"{m['catalog']['provider']}/{m['catalog']['model']}"
               for m in listed["data"] if m["catalog"])
    assert all(m["id"].startswith("bandit-router/") for m in listed["data"] if not m["catalog"])
    r = admin.put("/v1/models/openai/gpt-4o-mini/pricing", json={"output_price_per_1m": 0.9})
    assert r.status_code == 200 and r.json()["output_price_per_1m"] == 0.9
    r = admin.put("/v1/models/gpt-4o-mini/pricing", json={"input_price_per_1m": 0.2})
    assert r.json()["input_price_per_1m"] == 0.2 and r.json()["output_price_per_1m"] == 0.9
    client = RouterClient(server.url, server.client_key)
    d = client.select("hello", constraints=Constraints(allowed_models=["gpt-4o-mini"]))
    expected = (d.input_tokens * 0.2 + 300 * 0.9) / 1e6
    assert d.estimated_cost_usd == pytest.approx(expected, rel=0.5)


def test_select_with_chat_messages(server: Server) -> None:
    """A chat request's messages instead of a task: over raw HTTP, the client, and refused
    with a 422 when both, neither, or no user turn is given."""
    system = "You answer questions about geography. " * 60
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": "What is the capital of Peru?", "name": "u1"}]
    client = RouterClient(server.url, server.client_key)
    d = client.select(messages, event_id="chat-1")
    record = client.get_event(d.event_id)
    assert record.input_tokens == -(-(len(system) + len(messages[1]["content"])) // 4)
    auth = {"Authorization": f"Bearer {server.client_key}"}
    for body in ({"task": "hi", "messages": messages}, {}, {"messages": []},
                 {"messages": [{"role": "system", "content": "only a system prompt"}]},
                 {"messages": [{"role": "wizard", "content": "hi"}]}):
        r = httpx.post(f"{server.url}/v1/select", json=body, headers=auth)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["type"] == "InvalidTaskError"
    r = httpx.post(f"{server.url}/v1/select", headers=auth, json={"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Describe this map."},
                                     {"type": "image_url", "image_url": {"url": "x"}}]}]})
    assert r.status_code == 200, r.text

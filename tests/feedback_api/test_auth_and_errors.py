"""The auth and scope matrix, and every error status, against the real server."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from bandit_router import (
    AuthenticationError,
    Constraints,
    DuplicateRewardError,
    InvalidInputError,
    NoEligibleModelError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnknownEventError,
)
from bandit_router.client import RouterClient
from feedback_api import KeyStore

from .conftest import Server

pytestmark = pytest.mark.slow

# (method, path, body, scope needed); {event} is replaced by an event the client owns
ROUTES = [
    ("POST", "/v1/select", {"task": "hello"}, "client"),
    ("POST", "/v1/events/{event}/reward", {"quality": 0.5}, "client"),
    ("GET", "/v1/events/{event}", None, "client"),
    ("GET", "/v1/models", None, "client"),
    ("PUT", "/v1/models/budget-nonexistent/pricing", {"input_price_per_1m": 1.0}, "admin"),
    ("GET", "/v1/stats", None, "admin"),
    ("GET", "/metrics", None, "admin"),
]


def call(server: Server, method: str, path: str, body: object, key: str | None,
         header: str = "bearer") -> httpx.Response:
    headers = {}
    if key is not None:
        headers = ({"Authorization": f"Bearer {key}"} if header == "bearer"
                   else {"X-API-Key": key})
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)


def fresh_event(server: Server) -> str:
    return RouterClient(server.url, server.client_key).select("Tell me about owls.").event_id


@pytest.mark.parametrize("method, path, body, needed", ROUTES)
def test_scope_matrix(server: Server, method: str, path: str, body: object,
                      needed: str) -> None:
    def target() -> str:
        return path.replace("{event}", fresh_event(server))

    for key, expected in ((None, 401), ("br-not-a-key", 401), (server.revoked_key, 401)):
        r = call(server, method, target(), body, key)
        assert r.status_code == expected, (key, r.text)
        assert r.json()["error"]["type"] == "AuthenticationError"
        assert r.headers.get("www-authenticate") == "Bearer"
    r = call(server, method, target(), body, server.client_key, header="x-api-key")
    if needed == "admin":
        assert r.status_code == 403 and r.json()["error"]["type"] == "PermissionDeniedError"
    else:
        assert r.status_code == 200, r.text
    r = call(server, method, target(), body, server.admin_key)
    assert r.status_code in (200, 404), r.text  # 404: the pricing route's unknown model
    if "pricing" in path:
        assert r.json()["error"]["type"] == "UnknownModelError"


def test_health_stays_open(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_clients_see_only_their_own_events(server: Server) -> None:
    event = fresh_event(server)
    r = call(server, "GET", f"/v1/events/{event}", None, server.other_client_key)
    assert r.status_code == 404
    r = call(server, "POST", f"/v1/events/{event}/reward", {"quality": 1.0},
             server.other_client_key)
    assert r.status_code == 404
    assert call(server, "GET", f"/v1/events/{event}", None, server.admin_key).status_code == 200


def test_event_names_are_per_key(server: Server) -> None:
    """Issue #19: a name one key used is neither taken from another key nor revealed to it."""
    name = f"req-{uuid.uuid4().hex[:8]}"
    mine, theirs = server.client_key, server.other_client_key
    first = call(server, "POST", "/v1/select", {"task": "owls", "event_id": name}, mine)
    second = call(server, "POST", "/v1/select", {"task": "owls", "event_id": name}, theirs)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["event_id"] == second.json()["event_id"] == name
    again = call(server, "POST", "/v1/select", {"task": "owls", "event_id": name}, mine)
    assert again.status_code == 409 and again.json()["error"]["type"] == "DuplicateEventError"
    for key, quality in ((mine, 0.25), (theirs, 0.75)):
        r = call(server, "POST", f"/v1/events/{name}/reward", {"quality": quality}, key)
        assert r.status_code == 200 and r.json()["event_id"] == name, r.text
    for key, quality in ((mine, 0.25), (theirs, 0.75)):
        event = call(server, "GET", f"/v1/events/{name}", None, key).json()
        assert event["event_id"] == name and event["reward"]["quality"] == quality
    # the log's id of my event: another client key cannot read it; an admin key can
    keys = KeyStore(server.database_url)
    try:
        mine_id = next(k.id for k in keys.list() if k.name == "app")
    finally:
        keys.close()
    stored = f"k{mine_id}~{name}"
    assert call(server, "GET", f"/v1/events/{stored}", None, theirs).status_code == 404
    admin_view = call(server, "GET", f"/v1/events/{stored}", None, server.admin_key).json()
    assert admin_view["event_id"] == stored and admin_view["reward"]["quality"] == 0.25
    long = call(server, "POST", "/v1/select", {"task": "owls", "event_id": "x" * 101}, mine)
    assert long.status_code == 422


def test_a_rotated_key_keeps_its_events_and_an_expired_one_is_refused(server: Server) -> None:
    keys = KeyStore(server.database_url)
    try:
        old, old_secret = keys.create(name="rotating", scope="client")
        name = f"rot-{uuid.uuid4().hex[:8]}"
        named = call(server, "POST", "/v1/select", {"task": "owls", "event_id": name},
                     old_secret)
        unnamed = call(server, "POST", "/v1/select", {"task": "owls"}, old_secret)
        assert named.status_code == unnamed.status_code == 200
        new, new_secret = keys.rotate(old.id, grace_s=0.0)
        # one chain, one name: its budgets' tenant, its rate limit's and experiments' unit
        assert new.tag == old.tag == new.tenant_tag == f"key-{old.id}"
        _, expired = keys.create(name="expired", scope="client", expires_in_s=0.05)
    finally:
        keys.close()
    time.sleep(0.1)
    for secret in (old_secret, expired):
        r = call(server, "POST", "/v1/select", {"task": "owls"}, secret)
        assert r.status_code == 401 and r.json()["error"]["type"] == "AuthenticationError"
    for event in (name, unnamed.json()["event_id"]):  # the successor owns them
        r = call(server, "POST", f"/v1/events/{event}/reward", {"quality": 1.0}, new_secret)
        assert r.status_code == 200, r.text
    again = call(server, "POST", "/v1/select", {"task": "owls", "event_id": name}, new_secret)
    assert again.status_code == 409  # the same namespace


def test_error_statuses_and_one_shape(server: Server) -> None:
    key = server.client_key
    event = fresh_event(server)
    named = f"named-{uuid.uuid4().hex}"
    assert call(server, "POST", "/v1/select", {"task": "hi", "event_id": named},
                key).status_code == 200
    cases = [
        (call(server, "POST", "/v1/events/no-such-event/reward", {"quality": 0.5}, key), 404,
         "UnknownEventError"),
        (call(server, "GET", "/v1/events/no-such-event", None, key), 404, "UnknownEventError"),
        (call(server, "POST", f"/v1/events/{event}/reward", {"quality": 1.5}, key), 422,
         "InvalidRewardError"),
        (call(server, "POST", f"/v1/events/{event}/reward", {}, key), 422,
         "InvalidRewardError"),
        (call(server, "POST", f"/v1/events/{event}/reward", {"quality": 0.5, "x": 1}, key),
         422, "InvalidRewardError"),
        (call(server, "POST", "/v1/select", {"task": ""}, key), 422, "InvalidTaskError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "constraints": {
            "max_cost_usd": 1e-12}}, key), 422, "NoEligibleModelError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "constraints": {
            "excluded_models": ["no-such-model"]}}, key), 422, "UnknownModelError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "constraints": {
            "max_cost_usd": -1}}, key), 422, "InvalidConstraintsError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "constraints": {
            "min_quality": 0.999, "min_quality_strict": True}}, key), 422,
         "NoEligibleModelError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "event_id": "a/b"}, key), 422,
         "InvalidTaskError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "input_tokens": 10**40}, key), 422,
         "InvalidTaskError"),
        (call(server, "DELETE", "/v1/select", None, key), 405, "MethodNotAllowed"),
        (call(server, "GET", "/v1/nothing-here", None, key), 404, "NotFound"),
        # numbers are numbers: not true, not "0.5", and a failed call's quality is 0
        (call(server, "POST", f"/v1/events/{event}/reward", {"quality": True}, key), 422,
         "InvalidRewardError"),
        (call(server, "POST", f"/v1/events/{event}/reward", {"quality": "0.5"}, key), 422,
         "InvalidRewardError"),
        (call(server, "POST", f"/v1/events/{event}/reward", {"quality": 1, "error": "timeout"},
              key), 422, "InvalidRewardError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "input_tokens": 12.5}, key), 422,
         "InvalidTaskError"),
        # ids no HTTP client can address, and one already used (409, as the error map says)
        (call(server, "POST", "/v1/select", {"task": "hi", "event_id": "."}, key), 422,
         "InvalidTaskError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "event_id": ".."}, key), 422,
         "InvalidTaskError"),
        (call(server, "POST", "/v1/select", {"task": "hi", "event_id": named}, key), 409,
         "DuplicateEventError"),
    ]
    for response, status, kind in cases:
        assert response.status_code == status, (kind, response.text)
        body = response.json()
        assert set(body) == {"error"} and body["error"]["type"] == kind
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    no_model = cases[6][0].json()["error"]["details"]["reasons"]
    assert no_model and all("max_cost_usd" in why for why in no_model.values())
    # NaN is not JSON, but Python clients send it: refused, not learned
    r = httpx.post(f"{server.url}/v1/events/{event}/reward",
                   content=b'{"quality": NaN}', headers={
                       "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert r.status_code == 422
    ok = call(server, "POST", f"/v1/events/{event}/reward", {"quality": 0.5}, key)
    assert ok.status_code == 200
    dup = call(server, "POST", f"/v1/events/{event}/reward", {"quality": 0.9}, key)
    assert dup.status_code == 409 and dup.json()["error"]["type"] == "DuplicateRewardError"


def test_body_too_large(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.client_key}",
               "Content-Type": "application/json"}
    big = b'{"task": "' + b"x" * 70_000 + b'"}'
    r = httpx.post(f"{server.url}/v1/select", content=big, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLargeError"

    def chunks():  # no Content-Length: the limit applies to what streams in
        yield b'{"task": "'
        for _ in range(20):
            yield b"y" * 5000
        yield b'"}'

    r = httpx.post(f"{server.url}/v1/select", content=chunks(), headers=headers)
    assert r.status_code == 413


def test_client_raises_the_library_errors(server: Server) -> None:
    client = RouterClient(server.url, server.client_key)
    with pytest.raises(UnknownEventError):
        client.reward("no-such-event", quality=0.5)
    d = client.select("What is 2 + 2?")
    client.reward(d.event_id, quality=1.0)
    with pytest.raises(DuplicateRewardError) as dup:
        client.reward(d.event_id, quality=0.0)
    assert dup.value.event_id == d.event_id
    with pytest.raises(NoEligibleModelError) as none:
        client.select("hi", constraints=Constraints(max_cost_usd=1e-12))
    assert len(none.value.reasons) >= 10
    with pytest.raises(NoEligibleModelError):
        client.select("hi", constraints=Constraints(min_quality=0.999, min_quality_strict=True))
    # not strict: the highest estimate answers, and says why
    best = client.select("hi", constraints=Constraints(min_quality=0.999))
    assert "min_quality 0.999" in best.reasoning and best.alternatives == ()
    with pytest.raises(InvalidInputError):
        client.reward(client.select("hi").event_id, quality=2.0)
    with pytest.raises(AuthenticationError):
        RouterClient(server.url, "br-wrong").select("hi")
    with pytest.raises(PermissionDeniedError):
        client.get_routing_stats()
    with pytest.raises(PayloadTooLargeError):
        client.select("z" * 70_000)


def test_review_regressions_are_4xx(server: Server) -> None:
    """Inputs that once produced 5xx or landed on the wrong event."""
    headers = {"Authorization": f"Bearer {server.client_key}",
               "Content-Type": "application/json"}
    for body in (b'{"task": "\\ud800"}', b'{"task": "hi", "metadata": {"k": "\\ud800"}}',
                 b'{"task": "hi", "event_id": "a%41"}', b'{"task": "hi", "event_id": "q?x"}'):
        r = httpx.post(f"{server.url}/v1/select", content=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.put(f"{server.url}/v1/models/gpt-4o/pricing",
                  json={"output_price_per_1m": 1e308}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["type"] == "CatalogError"
    client = RouterClient(server.url, server.client_key)
    d = client.select("hello", event_id="order:42.v1~x")  # every allowed punctuation mark
    assert client.reward(d.event_id, quality=1.0).event_id == "order:42.v1~x"
    from bandit_router import InvalidRewardError, InvalidTaskError

    with pytest.raises(InvalidRewardError):  # the library's class, not just InvalidInputError
        client.reward(client.select("hi").event_id, quality=1.5)
    with pytest.raises(InvalidTaskError):
        client.select("hi", cost_weight=-1)


def test_security_headers_on_every_answer_and_cors_closed(server: Server) -> None:
    answers = [httpx.get(f"{server.url}/healthz"),
               call(server, "GET", "/v1/events/no-such-event", None, server.client_key),
               call(server, "POST", "/v1/select", {"task": ""}, server.client_key),
               httpx.get(f"{server.url}/v1/stats")]  # 401
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.status_code
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert "content-security-policy" not in httpx.get(f"{server.url}/docs").headers
    preflight = httpx.options(f"{server.url}/v1/select", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_opens_only_to_the_origins_named(tmp_path) -> None:
    import json as _json

    from fastapi.testclient import TestClient

    from bandit_router.eval.simulation import demo_catalog
    from feedback_api import Settings, create_app

    catalog = tmp_path / "catalog.json"
    catalog.write_text(_json.dumps(demo_catalog().to_dict()))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cors.db'}", embedder="hash",
                        catalog_path=str(catalog), cors_origins=["https://ops.example"])
    with TestClient(create_app(settings)) as http:
        ask = {"Access-Control-Request-Method": "POST"}
        ok = http.options("/v1/select", headers={"Origin": "https://ops.example", **ask})
        assert ok.headers["access-control-allow-origin"] == "https://ops.example"
        other = http.options("/v1/select", headers={"Origin": "https://evil.example", **ask})
        assert "access-control-allow-origin" not in other.headers

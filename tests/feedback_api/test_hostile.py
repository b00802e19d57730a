"""A hostile corpus against the real server (issue #19): bodies that are huge, deeply nested,
not UTF-8, not JSON, full of control characters, NaN, absurd numbers and injection-looking
ids, sent to every endpoint that reads a body. Zero 5xx; malformed JSON is reported as
malformed JSON; the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Server

MALFORMED = {
    "truncated": b'{"task": "hi"',
    "single quotes": b"{'task': 'hi'}",
    "trailing comma": b'{"task": "hi",}',
    "deeply nested object": b'{"a": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    "deeply nested list": b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    "invalid UTF-8": b'{"task": "\xff\xfe\xc3"}',
    "a 5,000-digit number": b'{"quality": ' + b"9" * 5_000 + b"}",
    "a lone surrogate escape pair broken": b'{"task": "\\ud800\\u0041\\x"}',
}
#: well-formed JSON, each refused (4xx) or taken as it is (2xx), never a 5xx
WELL_FORMED = [
    b'{"task": "hi\\u0000there"}', b'{"task": "\\u0001\\u200b\\u202e\\ufeff"}',
    b'{"task": "\\ud800"}', b'{"task": "hi", "cost_weight": NaN}',
    b'{"task": "hi", "cost_weight": -Infinity}', b'{"task": "hi", "cost_weight": 1e400}',
    b'{"task": "hi", "input_tokens": 18446744073709551616}',
    b'{"task": "hi", "event_id": "1\' OR 1=1 --"}', b'{"task": "hi", "event_id": "../x"}',
    b'{"task": "hi", "event_id": "%2e%2e"}', b'{"task": "hi", "metadata": {"$where": 1}}',
    b'{"task": "hi", "metadata": {"k": "\\u0000"}}', b'{"task": "x", "unit_key": null}',
    b"[]", b"null", b"0", b'"task"', b"{}", b'{"quality": -0.0}', b'{"quality": 1e-320}',
    b'{"quality": 0.5, "cost_usd": 1e308}', b'{"quality": 0.5, "output_tokens": -1}',
    b'{"error": "timeout", "quality": 0.0}', b'{"error": "DROP TABLE events"}',
    b'{"scope": "tenant:\\u0000", "daily_limit": 1}', b'{"scope": "router", "daily_limit": 1e99}',
    b'{"name": "x", "arms": {"\\ud800": {}, "b": {}}}',
    b'{"name": "x", "arms": {"a": {"cost_weight": NaN}, "b": {}}}',
    b'{"input_price_per_1m": -1}', b'{"input_price_per_1m": 1e400}',
    b'{"strategy": "weighted", "deployments": [{"id": "\\u0000", "model": "m", "provider": "p"}]}',
]


@pytest.fixture(scope="module")
def targets(server: Server) -> list[tuple[str, str, str]]:
    """``(method, path, key)`` of every endpoint that reads a body."""
    d = httpx.post(f"{server.url}/v1/select", json={"task": "a question about owls"},
                   headers={"Authorization": f"Bearer {server.client_key}"}).json()
    models = [m["catalog"] for m in httpx.get(
        f"{server.url}/v1/models",
        headers={"Authorization": f"Bearer {server.admin_key}"}).json()["data"] if m["catalog"]]
    return [("POST", "/v1/select", server.client_key),
            ("POST", f"/v1/events/{d['event_id']}/reward", server.client_key),
            ("POST", "/v1/experiments", server.admin_key),
            ("PUT", "/v1/admin/budgets", server.admin_key),
            ("PUT", f"/v1/models/{models[0]['model']}/pricing", server.admin_key),
            ("PUT", "/v1/admin/load-balancing", server.admin_key)]


def _send(server: Server, method: str, path: str, key: str, body: bytes) -> httpx.Response:
    return httpx.request(method, server.url + path, content=body, timeout=60, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})


def test_malformed_bodies_are_400_malformed_json(server: Server, targets: list) -> None:
    for method, path, key in targets:
        for name, body in MALFORMED.items():
            r = _send(server, method, path, key, body)
            assert r.status_code in (400, 413), (path, name, r.status_code, r.text)
            error = r.json()["error"]
            if r.status_code == 400:
                assert error["type"] == "MalformedJSONError", (path, name, r.text)
                assert "JSON" in error["message"]


def test_hostile_well_formed_bodies_never_5xx(server: Server, targets: list) -> None:
    statuses: dict[int, int] = {}
    for method, path, key in targets:
        for body in WELL_FORMED:
            r = _send(server, method, path, key, body)
            assert r.status_code < 500, (path, body[:80], r.text)
            if r.status_code >= 400:
                assert set(r.json()) == {"error"} and r.json()["error"]["message"]
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    assert statuses.get(422, 0) > len(targets) * 10  # most of the corpus is refused


def test_a_ten_megabyte_body_is_413_and_the_server_keeps_serving(server: Server,
                                                                 targets: list) -> None:
    huge = b'{"task": "' + b"x" * 10_000_000 + b'"}'
    for method, path, key in targets[:2]:
        r = _send(server, method, path, key, huge)
        assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLargeError"
    d = httpx.post(f"{server.url}/v1/select", json={"task": "still there?"},
                   headers={"Authorization": f"Bearer {server.client_key}"})
    assert d.status_code == 200
    r = httpx.post(f"{server.url}/v1/events/{d.json()['event_id']}/reward",
                   json={"quality": 1.0},
                   headers={"Authorization": f"Bearer {server.client_key}"})
    assert r.status_code == 200

"""Limits at the HTTP edge (issue #19), against a real server: per-key request rates, the
request head's size and deadline, and the body's read timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from feedback_api.limits import RateLimiter

from .conftest import Server, make_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("limits"), BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_RATE_LIMIT_PER_S="0.2", BANDIT_ROUTER_RATE_LIMIT_BURST="5",
                      BANDIT_ROUTER_HEADER_TIMEOUT_S="1", BANDIT_ROUTER_BODY_TIMEOUT_S="1",
                      BANDIT_ROUTER_MAX_HEADER_BYTES="8192")
    srv.start()
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_token_buckets_refill_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=10.0, burst=3, clock=lambda: now[0])
    assert [limiter.wait_s("a") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.1)]
    assert limiter.wait_s("b") == 0.0  # each key its own bucket
    now[0] = 0.25  # 2.5 tokens back
    assert [limiter.wait_s("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.05)]
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=0.0, burst=1)


def test_a_key_over_its_rate_gets_429_with_retry_after(limited: Server) -> None:
    mine = {"Authorization": f"Bearer {limited.client_key}"}
    answers = [httpx.post(f"{limited.url}/v1/select", json={"task": f"q {i}"}, headers=mine)
               for i in range(12)]
    codes = [r.status_code for r in answers]
    assert codes[:5] == [200] * 5 and 429 in codes, codes
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["type"] == "RateLimitError"
    assert int(refused.headers["Retry-After"]) >= 1
    # another key has its own bucket; rewards count against the same key's
    other = {"Authorization": f"Bearer {limited.other_client_key}"}
    assert httpx.post(f"{limited.url}/v1/select", json={"task": "q"},
                      headers=other).status_code == 200
    event = answers[0].json()["event_id"]
    r = httpx.post(f"{limited.url}/v1/events/{event}/reward", json={"quality": 1.0},
                   headers=mine)
    assert r.status_code == 429
    time.sleep(int(refused.headers["Retry-After"]) + 0.1)
    r = httpx.post(f"{limited.url}/v1/events/{event}/reward", json={"quality": 1.0},
                   headers=mine)
    assert r.status_code == 200, r.text


def test_an_endless_header_line_is_refused_at_the_cap(limited: Server) -> None:
    with _connect(limited) as sock:
        sock.sendall(b"POST /v1/select HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 4_000_000:  # the server answers and closes long before
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_all(sock) if sent < 4_000_000 else sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]  # refused at 8 KB, not read on
    assert httpx.get(f"{limited.url}/healthz").status_code == 200


def test_a_request_head_that_never_ends_is_closed(limited: Server) -> None:
    with _connect(limited) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(5):  # a byte at a time keeps uvicorn's keep-alive timer away
            time.sleep(0.3)
            try:
                sock.sendall(b"X")
            except OSError:
                break
        assert _read_all(sock) == b""  # closed without an answer
        assert time.monotonic() - start < 5.0
    # an ordinary client on a kept-alive connection is unaffected
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(f"{limited.url}/healthz").status_code == 200
            time.sleep(0.4)


def test_a_body_that_stops_arriving_gets_408(limited: Server) -> None:
    with _connect(limited) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /v1/select HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100\r\nAuthorization: Bearer "
                     + limited.admin_key.encode() + b"\r\n\r\n{\"task\": ")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"RequestTimeoutError" in answer
    assert time.monotonic() - start < 5.0


def test_a_keys_rewards_past_its_learning_rate_are_stored_but_held_back(tmp_path: Path) -> None:
    srv = make_server(tmp_path, BANDIT_ROUTER_EMBEDDER="hash",
                      BANDIT_ROUTER_LEARN_RATE_PER_TENANT_PER_MIN="6")  # one at once
    srv.start()
    try:
        def pair(key: str, i: int) -> dict[str, object]:
            auth = {"Authorization": f"Bearer {key}"}
            d = httpx.post(f"{srv.url}/v1/select", json={"task": f"flood {i}"}, headers=auth)
            r = httpx.post(f"{srv.url}/v1/events/{d.json()['event_id']}/reward",
                           json={"quality": 1.0}, headers=auth)
            assert r.status_code == 200, r.text  # acknowledged and stored either way
            return dict(r.json())

        mine = [pair(srv.client_key, i)["held_back"] for i in range(5)]
        assert mine == [False, True, True, True, True]
        assert pair(srv.other_client_key, 9)["held_back"] is False  # another tenant's own
    finally:
        srv.stop()

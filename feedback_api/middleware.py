"""ASGI middleware: the request body limit, Prometheus request metrics and security
headers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

__all__ = ["BodyLimit", "RequestMetrics", "SecurityHeaders"]


class BodyLimit:
    """Answers 413 for a body over ``max_bytes``, declared or streamed, and 408 when the next
    part of a body takes longer than ``timeout_s`` to arrive.

    The body is read here, up to the limit, before the app sees the request (the app would
    read it whole anyway), so an oversized stream is refused as soon as it passes the limit,
    and a client that stops sending holds its connection for ``timeout_s`` at most.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def _reject(self, send: Send, status: int = 413) -> None:
        kind, message = (("PayloadTooLargeError", f"request body over {self.max_bytes} bytes")
                         if status == 413 else
                         ("RequestTimeoutError", f"no part of the request body arrived for "
                                                 f"{self.timeout_s:g} s"))
        body = json.dumps({"error": {"type": kind, "message": message,
                                     "details": None}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                await self._reject(send, 408)
                return
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestMetrics:
    """Counts requests and times them, by route template and status. A response that fails
    after its status line went out (a stream broken off: the caller's transfer breaks) counts
    as a 500, not as the 200 its first line said."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        except Exception:
            status = max(status, 500)  # (broken off after a 2xx status line: a failure)
            raise
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope.get("method", ""), path, status,
                                         time.perf_counter() - start)


#: Set on every answer: an API's JSON is never sniffed, framed, cached or sent as a referrer.
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                     (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]
#: Also set outside the interactive docs (whose page runs scripts): nothing may load or run.
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOC_PATHS = ("/docs", "/redoc", "/docs-static")


class SecurityHeaders:
    """Adds the headers of ``_SECURITY_HEADERS`` to every answer, and a content security
    policy that allows nothing to every answer but the interactive docs' pages. Headers the
    app set itself are kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_SECURITY_HEADERS)
        if not str(scope.get("path", "")).startswith(_DOC_PATHS):
            extra.append(_CSP)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

"""Limits at the HTTP edge: a per-key request rate (token buckets), and an h11 protocol that
closes connections whose request head does not arrive in time (slow-header clients), with
h11's cap on the head's size (an unterminated 64 MB header line is refused at the cap).

>>> clock = [0.0]
>>> limiter = RateLimiter(rate_per_s=2.0, burst=2, clock=lambda: clock[0])
>>> [limiter.wait_s("key-1") for _ in range(3)]
[0.0, 0.0, 0.5]
>>> clock[0] = 0.5; limiter.wait_s("key-1")
0.0
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from bandit_router.core._throttle import TokenBuckets

__all__ = ["HeadDeadlineH11", "RateLimiter"]


#: a token bucket per API key (the library's rule, one home for it)
RateLimiter = TokenBuckets


class HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head: a connection that has
    not sent a whole head within ``head_timeout_s`` of connecting, or of its previous
    response, is closed. uvicorn's own keep-alive timeout is cancelled by any byte, so a
    client sending one byte at a time would otherwise hold a connection open forever."""

    head_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_late)

    def _head_late(self) -> None:
        self._head_deadline = None
        # IDLE: h11 has not seen a whole request head since the deadline was set
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

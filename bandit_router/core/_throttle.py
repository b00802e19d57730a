"""Token buckets per key: the service's request rate limits and the router's learning rate
per tenant share this one rule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """A token bucket per key: ``burst`` at once, refilled at ``rate_per_s``. Thread-safe;
    per process, so with several replicas each enforces its own share.

    >>> buckets = TokenBuckets(rate_per_s=1.0, burst=2, clock=lambda: 0.0)
    >>> [buckets.wait_s("a") for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> buckets.wait_s("b")
    0.0
    """

    #: buckets kept at most; a full bucket carries no state, so the oldest are dropped
    MAX_KEYS = 100_000

    def __init__(self, *, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_per_s > 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s, self.burst, self._clock = rate_per_s, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def refund(self, key: str) -> None:
        """Give back a token taken for ``key`` whose work did not happen."""
        with self._lock:
            found = self._buckets.get(key)
            if found is not None:
                self._buckets[key] = (min(float(self.burst), found[0] + 1.0), found[1])

    def wait_s(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when there was one, else the seconds until there
        will be (nothing is taken)."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            if tokens >= 1.0:
                if len(self._buckets) >= self.MAX_KEYS and key not in self._buckets:
                    self._buckets.pop(next(iter(self._buckets)))
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

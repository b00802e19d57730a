"""How long a request's routing took, and how much of it was the embedding.

Each request's decisions run in a worker thread; the router's embedder is a
:class:`~bandit_router.TimedEmbedder` (see ``build_router``), which counts per thread. So
:func:`timed` zeroes the thread's count, runs the call, and reads it back: the embedding's
share (waiting for a batch included) and the rest, what the router adds to it (its lock,
the policy, the estimates, the logged event and budget reservation). Responses carry it as
``Server-Timing`` (W3C: browsers' developer tools and most tracing proxies show it) and the
metrics as ``bandit_router_select_seconds{part="embed"|"route"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bandit_router import Router, TimedEmbedder

__all__ = ["Timing", "durations", "timed"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds spent embedding, and in the whole of the routing calls; ``+`` adds them (the
    gateway's decisions, one per model tried)."""

    embed_s: float = 0.0
    total_s: float = 0.0

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.embed_s + other.embed_s, self.total_s + other.total_s)

    @property
    def route_s(self) -> float:
        """What the router added to the embedding."""
        return max(self.total_s - self.embed_s, 0.0)

    def header(self) -> str:
        """The ``Server-Timing`` value: ``embed`` and ``route``, in milliseconds.

        >>> Timing(0.004, 0.0065).header()
        'embed;dur=4.000, route;dur=2.500'
        """
        return f"embed;dur={1000 * self.embed_s:.3f}, route;dur={1000 * self.route_s:.3f}"


def durations(header: str) -> dict[str, float]:
    """A ``Server-Timing`` value's durations by name, in milliseconds (what a client reads
    back of :meth:`Timing.header`).

    >>> durations(Timing(0.004, 0.0065).header())
    {'embed': 4.0, 'route': 2.5}
    """
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name and dur:
            out[name] = float(dur)
    return out


def _timer(lib: Router) -> TimedEmbedder | None:
    inner = getattr(lib.embedder, "inner", None)  # (the router caches around what it got)
    return inner if isinstance(inner, TimedEmbedder) else None


def timed(lib: Router, call: Callable[[], _T]) -> tuple[_T, Timing]:
    """``call()`` (a decision by ``lib`` or by an experiment's arm, which shares its
    embedder) on this thread, and how long it took; the embedding's share is 0 where the
    router's embedder is not timed."""
    timer = _timer(lib)
    if timer is not None:
        timer.start()
    start = time.perf_counter()
    result = call()
    total = time.perf_counter() - start
    return result, Timing(timer.seconds() if timer is not None else 0.0, total)

"""The service's request timing: the Server-Timing value and what a client reads of it."""

from __future__ import annotations

import pytest

from bandit_router import Router, TimedEmbedder
from bandit_router.eval.simulation import HashEmbedder, demo_catalog
from feedback_api.timing import Timing, durations, timed


def test_header_round_trips_and_timings_add() -> None:
    first, second = Timing(0.004, 0.0065), Timing(0.001, 0.002)
    assert first.header() == "embed;dur=4.000, route;dur=2.500"
    assert durations(first.header()) == {"embed": 4.0, "route": 2.5}
    both = first + second
    assert both.embed_s == pytest.approx(0.005) and both.total_s == pytest.approx(0.0085)
    assert Timing(0.003, 0.002).route_s == 0.0  # never negative
    assert durations("embed;dur=1.5, junk, ;dur=2") == {"embed": 1.5}


def test_timed_counts_the_routers_embedding_on_this_thread() -> None:
    router = Router(database_url="sqlite://", catalog=demo_catalog(),
                    embedder=TimedEmbedder(HashEmbedder()))
    try:
        d, timing = timed(router, lambda: router.select("count the embedding's time"))
        assert d.event_id and 0.0 < timing.embed_s < timing.total_s
        _, again = timed(router, lambda: router.select("count the embedding's time"))
        assert again.embed_s == 0.0  # the router's cache answered: no embedding this time
        untimed = Router(database_url="sqlite://", catalog=demo_catalog(),
                         embedder=HashEmbedder())
        try:
            _, plain = timed(untimed, lambda: untimed.select("no timer here"))
            assert plain.embed_s == 0.0 and plain.total_s > 0.0
        finally:
            untimed.close()
    finally:
        router.close()

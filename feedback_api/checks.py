"""Checks too costly for every poll: the fixed-model alert (a scan of the day's rewarded
requests, :func:`bandit_router.fixed_model_alerts`) runs at most every ``every_s`` seconds in
each process, and ``/v1/admin/alerts`` serves its last answer meanwhile.

>>> from bandit_router import Router
>>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
>>> r = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
>>> check = FixedModelCheck(every_s=600, window_s=86400)
>>> check.alerts(r), check.runs
([], 1)
>>> check.alerts(r), check.runs  # within 10 minutes: the last answer
([], 1)
>>> r.close()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bandit_router import HealthAlert, Router, fixed_model_alerts

__all__ = ["FixedModelCheck"]


class FixedModelCheck:
    """:func:`~bandit_router.fixed_model_alerts` over the last ``window_s`` seconds, run
    again once ``every_s`` seconds have passed since the last run (0: never run). One run at
    a time: a poll that finds one under way waits for its answer."""

    def __init__(self, *, every_s: float, window_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.every_s, self.window_s, self._clock = every_s, window_s, clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._alerts: list[HealthAlert] = []
        #: how many times the log was read
        self.runs = 0

    def alerts(self, router: Router) -> list[HealthAlert]:
        if self.every_s <= 0:
            return []
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self.every_s:
                self._alerts = fixed_model_alerts(router, now=now, window_s=self.window_s)
                self._at, self.runs = now, self.runs + 1
            return list(self._alerts)

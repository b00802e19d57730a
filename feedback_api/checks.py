"""Checks too costly for every poll: the fixed-model alert (a scan of the day's rewarded
requests, :func:`bandit_router.fixed_model_alerts`) is read again at most every ``every_s``
seconds in each process, on a thread of its own; ``/v1/admin/alerts`` serves the last
answer meanwhile, and a poll never waits for a scan except the very first.

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

import logging
import threading
import time
from collections.abc import Callable

from bandit_router import HealthAlert, Router, fixed_model_alerts

__all__ = ["FixedModelCheck"]

log = logging.getLogger("bandit_router")


class FixedModelCheck:
    """:func:`~bandit_router.fixed_model_alerts` over the last ``window_s`` seconds (by
    ``clock``), started again once ``every_s`` seconds have passed since the last start (by
    ``timer``; 0: never run). One scan at a time, in the background: a poll gets the last
    answer (the first poll waits for the first). A scan that fails is logged and keeps the
    last answer; the next is tried ``every_s`` later."""

    def __init__(self, *, every_s: float, window_s: float,
                 clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.window_s = every_s, window_s
        self._clock, self._timer = clock, timer
        self._lock = threading.Lock()
        self._started: float | None = None
        self._scan: threading.Thread | None = None
        self._answered = threading.Event()
        self._alerts: list[HealthAlert] = []
        #: scans finished (failed ones too), and failed
        self.runs = self.failures = 0

    def alerts(self, router: Router) -> list[HealthAlert]:
        if self.every_s <= 0:
            return []
        with self._lock:
            now = self._timer()
            if self._scan is None and (self._started is None
                                       or now - self._started >= self.every_s):
                self._started = now
                self._scan = threading.Thread(target=self._run, args=(router,), daemon=True,
                                              name="fixed-model-check")
                self._scan.start()
        self._answered.wait()  # (set once the first scan ends; at once after that)
        with self._lock:
            return list(self._alerts)

    def wait(self) -> None:
        """Wait for the scan under way, if any (tests)."""
        scan = self._scan
        if scan is not None:
            scan.join()

    def _run(self, router: Router) -> None:
        try:
            found: list[HealthAlert] | None = fixed_model_alerts(
                router, now=self._clock(), window_s=self.window_s)
        except Exception:
            log.exception("the fixed-model check failed; its last answer stands")
            found = None
        with self._lock:
            if found is not None:
                self._alerts = found
            else:
                self.failures += 1
            self.runs += 1
            self._scan = None
        self._answered.set()

"""The one thread that feeds rewards to the policy.

Requests never learn: ``POST /v1/events/{id}/reward`` makes the reward durable and wakes
this thread, which learns the log in order (``Router.sync``) in small batches, so decisions
interleave with learning, and sweeps expired events to their default reward.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from bandit_router import Router

from .metrics import Metrics

__all__ = ["BackgroundLearner"]

log = logging.getLogger("feedback_api")


class BackgroundLearner:
    def __init__(self, router: Router, metrics: Metrics, *, interval_s: float,
                 batch: int = 64,
                 others: Callable[[], Iterable[Router]] = lambda: ()) -> None:
        self.router = router
        self.others = others  # experiment arms: routers that learn their own arm's rewards
        self.metrics = metrics
        self.interval_s = interval_s
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bandit-router-learner",
                                        daemon=True)
        self.pending = 0  # rewards stored since the last learning pass
        self._pending_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        with self._pending_lock:
            self.pending += 1
            self.metrics.learn_lag.set(self.pending)
        self._wake.set()

    def drain(self) -> int:
        """Learn everything stored so far; returns how many rewards were learned."""
        total = 0
        for router in (self.router, *self.others()):
            while True:
                with self._pending_lock:
                    self.pending = 0
                n = router.sync(limit=self.batch)
                total += n
                if n < self.batch:
                    break
        self.metrics.policy_version.set(self.router.policy_version)
        self.metrics.learn_lag.set(self.pending)
        return total

    def _run(self) -> None:
        # the expiry sweep is a write transaction: run it on its own clock, not per reward
        sweep_every = min(self.router.config.reward_wait_s / 10.0, 5.0)
        next_sweep = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + sweep_every
                    self.router.process_expired(learn=False)  # drain() learns it
                self.drain()
            except Exception:  # keep learning alive; the log keeps what was not learned
                log.exception("learning pass failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            log.error("learner thread did not stop; the log keeps what it did not learn")
            return
        self.drain()

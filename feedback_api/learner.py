"""The one thread that feeds rewards to the policy, or follows the process that does.

Requests never learn: ``POST /v1/events/{id}/reward`` makes the reward durable and wakes
this thread. What the thread does depends on the process's role (``serve --role``):

- ``all`` (one process): it learns the log in order (``Router.sync``) in small batches, so
  decisions interleave with learning, and sweeps expired events to their default reward.
- ``learner``: the same while this process holds the :class:`~bandit_router.LearnerLock`,
  and it publishes the model (a checkpoint) at most every ``publish_interval_s``. Without the
  lock it is a standby: it follows the published model, tries the lock on every pass, and
  takes over (the newest publication, then the log after it) when the holder dies. A holder
  that finds it has lost the lock (its database connection ended) steps down.
- ``api``: it never learns; every ``follow_interval_s`` it loads the newest published model
  (``Router.refresh``), so every replica serves the same version within one interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal

from bandit_router import LearnerLock, Router

from .metrics import Metrics

__all__ = ["BackgroundLearner", "Role"]

log = logging.getLogger("feedback_api")

Role = Literal["all", "api", "learner"]


class BackgroundLearner:
    def __init__(self, router: Router, metrics: Metrics, *, interval_s: float,
                 batch: int = 64,
                 others: Callable[[], Iterable[Router]] = lambda: (),
                 role: Role = "all", lock: LearnerLock | None = None,
                 publish_interval_s: float = 1.0, follow_interval_s: float = 0.5,
                 reload: Callable[[], object] = lambda: None) -> None:
        if role == "learner" and lock is None:
            raise ValueError("the learner role needs a LearnerLock")
        self.router = router
        self.others = others  # experiment arms: routers that learn their own arm's rewards
        self.metrics = metrics
        self.interval_s = interval_s
        self.batch = batch
        self.role = role
        self._lock = lock
        self.publish_interval_s = publish_interval_s
        self.follow_interval_s = follow_interval_s
        self._reload = reload  # picks up experiments that another replica created
        #: whether this process learns the log now (always in "all", never in "api")
        self.leading = role == "all"
        self._next_publish = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bandit-router-learner",
                                        daemon=True)
        self.pending = 0  # rewards stored since the last learning pass
        self._pending_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def routers(self) -> list[Router]:
        return [self.router, *self.others()]

    def notify(self) -> None:
        with self._pending_lock:
            self.pending += 1
            self.metrics.learn_lag.set(self.pending)
        if self.leading:  # a follower has nothing to learn: it keeps its own clock
            self._wake.set()

    def drain(self) -> int:
        """Learn everything stored so far; returns how many rewards were learned."""
        total = 0
        for router in self.routers():
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

    def follow(self) -> int:
        """Load the newest published models; returns how many more rewards they learned."""
        total = sum(router.refresh() for router in self.routers())
        with self._pending_lock:
            self.pending = 0
        self.metrics.policy_version.set(self.router.policy_version)
        self.metrics.learn_lag.set(0)
        return total

    def publish(self, *, force: bool = False) -> None:
        """Publish every router's model if something was learned and the interval is up (a
        router whose checkpoint fails is tried again on the next pass; the others go on)."""
        now = time.monotonic()
        if not force and now < self._next_publish:
            return
        self._next_publish = now + self.publish_interval_s
        for router in self.routers():
            try:
                router.publish()
            except Exception:
                log.exception("publishing arm %r failed; trying again", router.arm)

    def _take_over_followers(self) -> None:
        """Learn with every router still following: all of them on taking the lead, and an
        experiment arm created meanwhile, or one whose take-over failed before."""
        for router in self.routers():
            if router.following:
                try:
                    router.take_over()
                except Exception:
                    log.exception("arm %r could not take over; trying again", router.arm)

    def _elect(self) -> None:
        """The learner role: take the lead when the lock is free, give it up when lost."""
        assert self._lock is not None
        held = self._lock.held() if self.leading else self._lock.acquire()
        if held and not self.leading:
            self.leading = True
            log.info("this process now learns and publishes")
        elif not held and self.leading:
            self.leading = False
            for router in self.routers():
                router.step_down()
            log.warning("learner lock lost: following the published model")

    def _pass(self, sweep_due: bool) -> None:
        if self.role == "learner":
            self._elect()
        if not self.leading:
            self.follow()
            return
        self._take_over_followers()
        if sweep_due:
            self.router.process_expired(learn=False)  # drain() learns it
        self.drain()
        if self.role == "learner":
            self.publish()

    def _run(self) -> None:
        # the expiry sweep is a write transaction: run it on its own clock, not per reward
        sweep_every = min(self.router.config.reward_wait_s / 10.0, 5.0)
        next_sweep = next_reload = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.interval_s if self.leading and self.role == "all"
                            else min(self.interval_s, self.follow_interval_s,
                                     self.publish_interval_s))
            self._wake.clear()
            try:
                now = time.monotonic()
                if self.role != "all" and now >= next_reload:
                    next_reload = now + 10.0
                    self._reload()
                sweep_due = now >= next_sweep
                if sweep_due:
                    next_sweep = now + sweep_every
                self._pass(sweep_due)
            except Exception:  # keep learning alive; the log keeps what was not learned
                log.exception("learning pass failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            log.error("learner thread did not stop; the log keeps what it did not learn")
            return
        if self.leading:
            self.drain()
            if self.role == "learner":
                self.publish(force=True)
        if self._lock is not None:
            self._lock.release()

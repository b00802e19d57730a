"""Deployments of a catalog model, load balancing among them, and their health.

A catalog model (``provider/model``) may be served by several :class:`Deployment` s (the same
Llama on Together and on Fireworks). The router learns *which model* answers; a
:class:`LoadBalancer` then decides *which deployment* of it takes the call. A model without
deployments is called directly and never reaches the balancer.

Semantics, all times from the injected ``clock`` (seconds):

- **Picks** (:meth:`LoadBalancer.pick`) go to an *available* deployment: not cooling down, and
  one more request of ``tokens`` tokens stays within its ``rpm`` / ``tpm`` over the last 60 s
  (a sliding window; a request larger than ``tpm`` never fits). ``None`` when none is.
  Strategies: ``round_robin`` cycles over the model's deployments in the order given,
  skipping unavailable ones; ``weighted`` maps the caller's ``draw`` in [0, 1) onto the
  available weights, so equal draws give equal picks; ``least_latency`` takes the lowest EWMA
  latency, but deployments never measured come first (fewest in flight among them);
  ``least_busy`` takes the fewest in flight. Remaining ties go to the earlier deployment.
- **In flight**: a pick counts as in flight until its outcome is reported, or for at most
  ``busy_timeout_s``. A report names its pick by ``ref`` (the event id); a report without a
  ref settles the oldest pick made without one. A report for an unknown ref settles nothing.
- **Failures**: only ``rate_limit``, ``server_error`` and ``timeout`` are the deployment's
  fault. ``allowed_fails`` of them within ``fail_window_s`` cool it down for ``cooldown_s``;
  then it comes back by itself with no failures counted. A success does not erase recent
  failures (they only age out of the window), so a deployment failing intermittently still
  cools down. Failures reported while it is cooling down are not counted.
- **Tokens**: a pick enters its estimated ``tokens`` into the tpm window; a report's
  ``tokens`` replaces that estimate with the actual count (same window slot). With no
  matching pick the actual count is added at report time, as tokens without a request.

>>> now = [0.0]
>>> lb = LoadBalancer([Deployment(id="tg", model="meta/llama-3.1-70b", provider="together"),
...                    Deployment(id="fw", model="meta/llama-3.1-70b", provider="fireworks")],
...                   config=LoadBalancingConfig(strategy="round_robin", allowed_fails=1),
...                   clock=lambda: now[0])
>>> [lb.pick("meta/llama-3.1-70b", draw=0.5).id for _ in range(3)]
['tg', 'fw', 'tg']
>>> lb.report("tg", error="server_error")  # the cooldown it started ends at
60.0
>>> [d.id for d in lb.available("meta/llama-3.1-70b")], lb.status()[0].healthy
(['fw'], False)
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate

from ..core._deployment import (
    FAILURE_KINDS,
    WINDOW_S,
    Deployment,
    DeploymentStatus,
    LoadBalancingConfig,
    check_count,
    check_number,
)
from ..core._errors import ERROR_KINDS, InvalidInputError, UnknownModelError

__all__ = ["LoadBalancer"]


@dataclass(slots=True)
class _Use:  # one entry of the 60 s window; a pick's entry is also its in-flight record
    at: float
    tokens: int
    request: bool = True


@dataclass(slots=True)
class _State:
    deployment: Deployment
    failures: deque[float] = field(default_factory=deque)
    cooldown_until: float | None = None
    ewma: float | None = None
    window: deque[_Use] = field(default_factory=deque)
    busy: dict[str, _Use] = field(default_factory=dict)
    anonymous: deque[_Use] = field(default_factory=deque)

    def refresh(self, now: float, config: LoadBalancingConfig) -> None:
        if self.cooldown_until is not None and now >= self.cooldown_until:
            self.cooldown_until = None
            self.failures.clear()
        while self.failures and self.failures[0] <= now - config.fail_window_s:
            self.failures.popleft()
        while self.window and self.window[0].at <= now - WINDOW_S:
            self.window.popleft()
        stale = now - config.busy_timeout_s
        while self.busy:  # insertion order is pick order: drop the stale ones in front
            ref, use = next(iter(self.busy.items()))
            if use.at > stale:
                break
            del self.busy[ref]
        while self.anonymous and self.anonymous[0].at <= stale:
            self.anonymous.popleft()

    def fits(self, tokens: int) -> bool:
        d = self.deployment
        used = sum(u.tokens for u in self.window)
        return (self.cooldown_until is None
                and (d.rpm is None or sum(u.request for u in self.window) + 1 <= d.rpm)
                and (d.tpm is None or used + tokens <= d.tpm))


class LoadBalancer:
    """Picks a deployment per call and tracks health, latency, load and rate limits.

    Thread-safe: one lock guards all state. :meth:`set_deployments` re-configures in place;
    deployments whose id remains keep their state (cooldown, failures, latency, windows).
    """

    def __init__(self, deployments: Iterable[Deployment], *, config: LoadBalancingConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._cursor: dict[str, int] = {}
        self.set_deployments(deployments, config=config)

    def set_deployments(self, deployments: Iterable[Deployment], *,
                        config: LoadBalancingConfig | None = None) -> None:
        """Replace the deployments (and the config, if given); remaining ids keep state."""
        new = list(deployments)
        if config is not None and not isinstance(config, LoadBalancingConfig):
            raise InvalidInputError("config must be a LoadBalancingConfig")
        if not all(isinstance(d, Deployment) for d in new):
            raise InvalidInputError("deployments must be Deployment instances")
        ids = [d.id for d in new]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidInputError(f"duplicate deployment ids {twice}")
        with self._lock:
            if config is not None:
                self._config = config
            old = self._states
            self._states = {d.id: old.get(d.id) or _State(d) for d in new}
            for d in new:
                self._states[d.id].deployment = d

    def models(self) -> set[str]:
        """The catalog keys that have at least one deployment."""
        with self._lock:
            return {s.deployment.model for s in self._states.values()}

    def _candidates(self, model: str, tokens: int) -> tuple[float, list[_State], list[bool]]:
        check_count(tokens, "tokens", low=0)
        now = self._clock()
        group = [s for s in self._states.values() if s.deployment.model == model]
        if not group:
            raise UnknownModelError(f"no deployments for model {model!r}")
        for s in group:
            s.refresh(now, self._config)
        return now, group, [s.fits(tokens) for s in group]

    def available(self, model: str, *, tokens: int = 0) -> list[Deployment]:
        """Deployments of ``model`` that could take one more request of ``tokens`` now.

        Raises :class:`UnknownModelError` if ``model`` has no deployments (as :meth:`pick`).
        """
        with self._lock:
            _, group, ok = self._candidates(model, tokens)
            return [s.deployment for s, fit in zip(group, ok, strict=True) if fit]

    def pick(self, model: str, *, draw: float, tokens: int = 0,
             ref: str | None = None) -> Deployment | None:
        """Choose and book a deployment of ``model``, or ``None`` if none is available."""
        if isinstance(draw, bool) or not isinstance(draw, int | float) or not 0 <= draw < 1:
            raise InvalidInputError(f"draw must be a number in [0, 1), got {draw!r}")
        with self._lock:
            now, group, ok = self._candidates(model, tokens)
            avail = [s for s, fit in zip(group, ok, strict=True) if fit]
            if not avail:
                return None
            strategy = self._config.strategy
            if strategy == "round_robin":
                start = self._cursor.get(model, 0) % len(group)
                i = next(j % len(group) for j in range(start, start + len(group))
                         if ok[j % len(group)])
                self._cursor[model], chosen = i + 1, group[i]
            elif strategy == "weighted":
                cum = list(accumulate(s.deployment.weight for s in avail))
                chosen = avail[min(bisect_right(cum, draw * cum[-1]), len(avail) - 1)]
            elif strategy == "least_latency":
                chosen = min(avail, key=lambda s: (0.0, _busy(s)) if s.ewma is None
                             else (1.0, s.ewma))
            else:
                chosen = min(avail, key=_busy)
            use = _Use(now, tokens)
            chosen.window.append(use)
            if ref is None:
                chosen.anonymous.append(use)
            else:
                chosen.busy[ref] = use
            return chosen.deployment

    def cancel(self, deployment_id: str, ref: str) -> None:
        """Give back the booking ``pick(ref=ref)`` made, for a call that will not happen
        (its decision was refused after the pick)."""
        with self._lock:
            state = self._states.get(deployment_id)
            use = state.busy.pop(ref, None) if state is not None else None
            if state is not None and use is not None:
                state.window = deque(u for u in state.window if u is not use)

    def apply_cooldowns(self, cooldowns: Mapping[str, float]) -> None:
        """Cool deployments down until the times given (another process's cooldowns, read
        from the database); a later end than a deployment's own wins, unknown ids are
        ignored."""
        with self._lock:
            now = self._clock()
            for deployment_id, until in cooldowns.items():
                state = self._states.get(deployment_id)
                if state is not None and until > now and (
                        state.cooldown_until is None or until > state.cooldown_until):
                    state.cooldown_until = until

    def report(self, deployment_id: str, *, ref: str | None = None, latency_s: float | None = None,
               error: str | None = None, tokens: int | None = None) -> float | None:
        """Record the outcome of a call (see the module docstring for the rules). Returns
        when the cooldown ends if this failure started one (else None).

        Raises :class:`UnknownModelError` for an unknown ``deployment_id`` and
        :class:`InvalidInputError` for a bad latency, error kind or token count.
        """
        if latency_s is not None:
            check_number(latency_s, "latency_s", low_open=False)
        if error is not None and error not in ERROR_KINDS:
            raise InvalidInputError(f"error must be one of {sorted(ERROR_KINDS)}")
        if tokens is not None:
            check_count(tokens, "tokens", low=0)
        with self._lock:
            state = self._states.get(deployment_id)
            if state is None:
                raise UnknownModelError(f"unknown deployment id {deployment_id!r}")
            now = self._clock()
            state.refresh(now, self._config)
            if ref is not None:
                use = state.busy.pop(ref, None)
            else:
                use = state.anonymous.popleft() if state.anonymous else None
            if tokens is not None:
                if use is not None:
                    use.tokens = tokens
                else:
                    state.window.append(_Use(now, tokens, request=False))
            if error is None and latency_s is not None:
                a, old = self._config.latency_alpha, state.ewma
                state.ewma = latency_s if old is None else a * latency_s + (1 - a) * old
            if error in FAILURE_KINDS and state.cooldown_until is None:
                state.failures.append(now)
                if len(state.failures) >= self._config.allowed_fails:
                    state.cooldown_until = now + self._config.cooldown_s
                    return state.cooldown_until
            return None

    def status(self) -> list[DeploymentStatus]:
        """One snapshot per deployment, in the order given."""
        with self._lock:
            now, out = self._clock(), []
            for s in self._states.values():
                s.refresh(now, self._config)
                d = s.deployment
                out.append(DeploymentStatus(
                    id=d.id, model=d.model, provider=d.provider, api_base=d.api_base,
                    weight=d.weight, healthy=s.cooldown_until is None,
                    cooldown_until=s.cooldown_until, recent_failures=len(s.failures),
                    in_flight=_busy(s), ewma_latency_s=s.ewma,
                    rpm_used=sum(u.request for u in s.window),
                    tpm_used=sum(u.tokens for u in s.window)))
            return out


def _busy(state: _State) -> int:
    return len(state.busy) + len(state.anonymous)

"""The router's spend guard: applies budgets to each decision, reserves and settles spend,
paces the cost weight and raises alerts. See :mod:`bandit_router.spend._budgets` for the rules."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..core._catalog import ModelSpec
from ..core._constraints import Estimate
from ..core._errors import BudgetExceededError
from ..core._sql import Writer
from ..core._store import Store
from ._budgets import (
    Budget,
    BudgetAlert,
    BudgetStatus,
    Ledger,
    bucket_of,
    event_scopes,
    window_bounds,
)

__all__ = ["BudgetPlan", "SpendGuard"]

log = logging.getLogger("bandit_router")

#: How often (seconds) a process re-reads budget definitions another process may have set.
BUDGET_REFRESH_S = 1.0
#: The pacing exponent is clipped to this range (a cost weight at most e^8 ~ 3000x its base).
MAX_PACING_EXPONENT = 8.0
#: Rounding allowed when a reservation re-reads its budget (sums in another order).
_SLACK_USD = 1e-9


@dataclass(frozen=True, slots=True)
class BudgetPlan:
    """What the budgets allow for one request."""

    eligible: list[int]
    reasons: dict[str, str]
    cost_weight: float
    forced: bool  # every model broke a budget whose on_exceed is "cheapest"
    usage: dict[tuple[str, str], float]


def _applies(budget: Budget, spec: ModelSpec, tenant: str | None) -> bool:
    scope = budget.scope
    return (scope == "router" or scope == f"provider:{spec.provider}"
            or scope == f"model:{spec.key}" or (tenant is not None and scope == f"tenant:{tenant}"))


class SpendGuard:
    """Budgets of one router, read from and written to its database."""

    def __init__(self, store: Store, *, clock: Callable[[], float], pacing_gain: float,
                 webhook_url: str | None = None) -> None:
        self.ledger = Ledger(store)
        self._clock = clock
        self._gain = pacing_gain
        self._webhook = webhook_url
        self._lock = threading.Lock()
        self._budgets: list[Budget] = []
        self._loaded_at = -math.inf
        self._fired: set[tuple[str, float, float]] = set()

    # -- definitions ---------------------------------------------------------------------------
    def budgets(self, *, refresh: bool = False) -> list[Budget]:
        now = self._clock()
        with self._lock:
            stale = refresh or now - self._loaded_at >= BUDGET_REFRESH_S
        if stale:
            loaded = self.ledger.load()
            with self._lock:
                self._budgets, self._loaded_at = loaded, now
        with self._lock:
            return list(self._budgets)

    def put(self, budgets: Sequence[Budget]) -> None:
        self.ledger.put(budgets, self._clock())
        self.budgets(refresh=True)

    def delete(self, ids: Sequence[str]) -> int:
        n = self.ledger.delete(ids)
        self.budgets(refresh=True)
        return n

    # -- one decision --------------------------------------------------------------------------
    def plan(self, specs: Sequence[ModelSpec], estimates: Sequence[Estimate],
             eligible: list[int], *, tenant: str | None, cost_weight: float) -> BudgetPlan:
        """Drop the models whose estimated cost breaks a budget, and pace the cost weight."""
        budgets = self.budgets()
        if not budgets or not eligible:
            return BudgetPlan(eligible, {}, cost_weight, False, {})
        now = self._clock()
        usage = self.ledger.usage({b.scope for b in budgets if b.window != "request"}, now)
        ok: list[int] = []
        reasons: dict[str, str] = {}
        broken: dict[int, list[Budget]] = {}
        for i in eligible:
            cost = estimates[i].cost_usd
            hit = [b for b in budgets if _applies(b, specs[i], tenant)
                   and (cost if b.window == "request" else usage.get((b.scope, b.window), 0.0)
                        + cost) > b.limit_usd]
            if hit:
                broken[i] = hit
                b = hit[0]
                reasons[specs[i].key] = (
                    f"estimated cost ${cost:.6f} breaks budget {b.scope} per {b.window} "
                    f"(${usage.get((b.scope, b.window), 0.0):.6f} of ${b.limit_usd:g} used)"
                    if b.window != "request" else
                    f"estimated cost ${cost:.6f} > per-request budget ${b.limit_usd:g}")
            else:
                ok.append(i)
        forced = False
        if not ok:
            cheapest = min(eligible, key=lambda i: estimates[i].cost_usd)
            hard = [b for b in broken[cheapest] if b.on_exceed == "error"]
            if hard:
                b = hard[0]
                used = usage.get((b.scope, b.window), 0.0)
                self._alert_crossings([b], usage, estimates[cheapest].cost_usd, now)
                raise BudgetExceededError(
                    scope=b.scope, window=b.window, limit_usd=b.limit_usd, used_usd=used,
                    resets_at=None if b.window == "request" else window_bounds(b.window, now)[1],
                    needed_usd=estimates[cheapest].cost_usd)
            ok, forced = [cheapest], True
        lam = self.paced(cost_weight, self.exponent(budgets, usage, tenant=tenant, now=now))
        return BudgetPlan(ok, reasons, lam, forced, usage)

    def exponent(self, budgets: Sequence[Budget], usage: Mapping[tuple[str, str], float], *,
                 tenant: str | None, now: float) -> float:
        """The pacing exponent: ``gain * (used / limit - elapsed share of the window)`` of
        the most binding pacing budget (0 when none paces)."""
        exps = []
        for b in budgets:
            if (b.pacing == "off" or b.window == "request" or b.limit_usd <= 0
                    or b.scope not in ("router", f"tenant:{tenant}")):
                continue
            start, end = window_bounds(b.window, now)
            x = self._gain * (usage.get((b.scope, b.window), 0.0) / b.limit_usd
                              - (now - start) / (end - start))
            if b.pacing == "target" or x > 0:
                exps.append(x)
        if not exps:
            return 0.0
        return min(max(max(exps), -MAX_PACING_EXPONENT), MAX_PACING_EXPONENT)

    @staticmethod
    def paced(cost_weight: float, exponent: float) -> float:
        """The cost weight after pacing: ``cost_weight * e^exponent``; raising starts from at
        least 1 quality point per USD, so a zero or tiny weight can still rise."""
        if exponent > 0:
            return max(cost_weight, 1.0) * math.exp(exponent)
        return cost_weight * math.exp(exponent)

    def hard_budgets(self, spec: ModelSpec, tenant: str | None) -> list[Budget]:
        """The budgets a decision for ``spec`` must not break (``on_exceed="error"``) whose
        use depends on other decisions (every window but ``request``)."""
        return [b for b in self.budgets() if b.on_exceed == "error" and b.window != "request"
                and _applies(b, spec, tenant)]

    def reserve(self, *, model_key: str, tenant: str | None, amount: float,
                created_at: float, recheck: Sequence[Budget] = ()) -> Callable[[Writer], None]:
        """The write that reserves a decision's estimated cost (run in its transaction).

        The plan read the spend before the decision; another decision (another thread,
        another process) may have reserved since. So the write serialises itself with every
        other decision on the same budgets (SQLite: its first write takes the database's
        write lock; PostgreSQL: an advisory lock per re-checked scope, taken first, in
        order), writes its reservation, reads each of ``recheck`` again and raises
        :class:`BudgetExceededError` (rolling the decision back) if one is now broken."""
        scopes = event_scopes(model_key, tenant)

        def write(s: Writer) -> None:
            if recheck:
                self.ledger.lock(s, [b.scope for b in recheck])
            self.ledger.add(s, scopes, bucket_of(created_at), reserved=amount, requests=1)
            used_now = self.ledger.used(s, [(b.scope, b.window) for b in recheck], created_at)
            for b, used in zip(recheck, used_now, strict=True):
                if used > b.limit_usd + _SLACK_USD:
                    raise BudgetExceededError(
                        scope=b.scope, window=b.window, limit_usd=b.limit_usd,
                        used_usd=used - amount, needed_usd=amount,
                        resets_at=window_bounds(b.window, created_at)[1])
        return write

    def settle(self, *, model_key: str, tenant: str | None, reserved: float | None,
               cost: float | None, created_at: float,
               settled: Callable[[Writer], float | None] | None = None
               ) -> Callable[[Writer], None]:
        """The write (in the reward's or the observation's transaction) that makes a
        decision's spend ``cost``: its reservation until a cost is known (``cost=None``),
        then the cost. ``settled`` reads, in the same transaction, the cost the decision's
        spend was already settled at (an observation's, before its reward), else ``None``;
        the write adds the difference, so a decision counts once however many times it is
        settled. Spend counts in the hour of the decision."""
        scopes = event_scopes(model_key, tenant)

        def share(c: float | None) -> tuple[float, float, int]:
            """(reserved, spent, requests) a decision adds to its scopes at cost ``c``; its
            request was counted when reserved, or else here (decisions logged before
            reservations existed)."""
            if c is None:
                return reserved or 0.0, 0.0, 0
            return 0.0, c, 0 if reserved is not None else 1

        def write(s: Writer) -> None:
            before = share(settled(s) if settled is not None else None)
            after = share(cost)
            if after == before:
                return
            self.ledger.add(s, scopes, bucket_of(created_at), reserved=after[0] - before[0],
                            spent=after[1] - before[1], requests=after[2] - before[2])
        return write

    def after_decision(self, spec: ModelSpec, tenant: str | None, plan: BudgetPlan,
                       cost: float) -> None:
        """Alert on thresholds this decision's reservation passed."""
        budgets = [b for b in self.budgets() if b.window != "request"
                   and _applies(b, spec, tenant)]
        if budgets:
            self._alert_crossings(budgets, plan.usage, cost, self._clock())

    # -- alerts --------------------------------------------------------------------------------
    def _alert_crossings(self, budgets: Sequence[Budget],
                         usage: Mapping[tuple[str, str], float], extra: float,
                         now: float) -> None:
        for b in budgets:
            if b.window == "request" or b.limit_usd <= 0:
                continue
            start, end = window_bounds(b.window, now)
            used = usage.get((b.scope, b.window), 0.0) + extra
            for t in b.alert_thresholds:
                key = (b.id, start, t)
                if used < t * b.limit_usd or key in self._fired:
                    continue
                with self._lock:
                    if len(self._fired) > 10_000:
                        self._fired.clear()
                    self._fired.add(key)
                alert = BudgetAlert(scope=b.scope, window=b.window, threshold=t,
                                    window_start=start, used_usd=used, limit_usd=b.limit_usd,
                                    created_at=now, details={"resets_at": end})
                if self.ledger.add_alert(alert, b.id):
                    self._notify(alert)

    def _notify(self, alert: BudgetAlert) -> None:
        log.warning("budget %s per %s passed %.0f%%: $%.6f of $%g", alert.scope, alert.window,
                    100 * alert.threshold, alert.used_usd, alert.limit_usd)
        if self._webhook:
            threading.Thread(target=_post, args=(self._webhook, alert.to_dict()),
                             daemon=True, name="bandit-router-alert").start()

    # -- reading -------------------------------------------------------------------------------
    def status(self, *, tenant: str | None = None) -> list[BudgetStatus]:
        budgets = self.budgets(refresh=True)
        now = self._clock()
        usage = self.ledger.usage({b.scope for b in budgets if b.window != "request"}, now)
        out = []
        for b in budgets:
            if b.window == "request":
                out.append(BudgetStatus(budget=b, spent_usd=0.0, reserved_usd=0.0, requests=0,
                                        window_start=None, resets_at=None,
                                        cost_weight_multiplier=1.0))
                continue
            spent, reserved, requests = self.ledger.window_totals(b.scope, b.window, now)
            start, end = window_bounds(b.window, now)
            scope_tenant = b.scope[len("tenant:"):] if b.scope.startswith("tenant:") else tenant
            mult = math.exp(self.exponent([b], usage, tenant=scope_tenant, now=now))
            out.append(BudgetStatus(budget=b, spent_usd=spent, reserved_usd=reserved,
                                    requests=requests, window_start=start, resets_at=end,
                                    cost_weight_multiplier=mult))
        return out


def _post(url: str, payload: dict[str, Any]) -> None:
    try:
        httpx.post(url, json=payload, timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("budget alert webhook %s failed: %s", url, exc)

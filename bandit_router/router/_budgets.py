"""The budget half of :class:`~bandit_router.Router`'s API (kept apart to keep modules small)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ..core._catalog import Catalog
from ..core._errors import InvalidInputError, UnknownModelError
from ..spend._budgets import Budget, BudgetAlert, BudgetStatus
from ..spend._guard import SpendGuard

__all__ = ["BudgetMethods"]


class BudgetMethods:
    """``set_budget``, ``budget_status``, ``budget_alerts`` and ``clear_budget``."""

    catalog: Catalog
    _spend: SpendGuard

    def _check_scope(self, scope: str) -> None:
        if scope.startswith("provider:") and scope[9:] not in self.catalog.providers():
            raise UnknownModelError(f"budget scope {scope!r}: no such provider in the catalog")
        if scope.startswith("model:") and scope[6:] not in self.catalog:
            raise UnknownModelError(f"budget scope {scope!r}: no such model in the catalog "
                                    "(name it provider/model)")

    def set_budget(self, *, hourly_limit: float | None = None, daily_limit: float | None = None,
                   monthly_limit: float | None = None, per_request_limit: float | None = None,
                   scope: str = "router", on_exceed: Literal["error", "cheapest"] = "error",
                   pacing: Literal["cap", "target", "off"] = "cap",
                   alert_thresholds: Sequence[float] = (0.5, 0.8, 1.0)) -> list[Budget]:
        """Set spend limits in US dollars for ``scope`` (``"router"``, ``"tenant:<id>"``,
        ``"provider:<name>"``, ``"model:<provider/model>"``). Limits left ``None`` keep
        their current setting; :meth:`clear_budget` removes one. Stored in the database, so
        every process on it enforces them (within a second).

        >>> from bandit_router import Router
        >>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
        >>> r = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
        >>> [b.window for b in r.set_budget(hourly_limit=1.0, daily_limit=10.0,
        ...                                 per_request_limit=0.05)]
        ['hour', 'day', 'request']
        >>> r.close()
        """
        limits = {"hour": hourly_limit, "day": daily_limit, "month": monthly_limit,
                  "request": per_request_limit}
        if all(v is None for v in limits.values()):
            raise InvalidInputError("set_budget needs at least one limit")
        budgets = [Budget(scope=scope, window=w, limit_usd=v,  # type: ignore[arg-type]
                          on_exceed=on_exceed, pacing=pacing,
                          alert_thresholds=tuple(alert_thresholds))
                   for w, v in limits.items() if v is not None]
        self._check_scope(scope)
        self._spend.put(budgets)
        return budgets

    def clear_budget(self, scope: str = "router", window: str | None = None) -> int:
        """Remove the budgets of ``scope`` (only the one of ``window`` if given); returns how
        many were removed."""
        windows = [window] if window is not None else ["hour", "day", "month", "request"]
        return self._spend.delete([f"{scope}|{w}" for w in windows])

    def budgets(self) -> list[Budget]:
        """Every budget in force."""
        return self._spend.budgets(refresh=True)

    def budget_status(self) -> list[BudgetStatus]:
        """Each budget with its window's spend, reservations, reset time and pacing factor."""
        return self._spend.status()

    def budget_alerts(self, *, since: float = 0.0) -> list[BudgetAlert]:
        """Threshold alerts stored since ``since`` (Unix time), oldest first."""
        return self._spend.ledger.alerts(since)

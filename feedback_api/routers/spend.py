"""Spend control (admin): budgets and their alerts, deployments and load balancing, and
reloading the LiteLLM price file."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from ..deps import AdminKey, RouterDep
from ..schemas import Body, ErrorOut

router = APIRouter(prefix="/v1/admin", tags=["spend control"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
    422: {"model": ErrorOut}}


class BudgetIn(Body):
    """Spend limits in US dollars for one scope: ``router``, ``tenant:<id>`` (the HTTP
    service's tenant is the API key id), ``provider:<name>`` or ``model:<provider/model>``.
    Limits left out keep their current setting."""

    scope: str = Field("router", min_length=1, max_length=300)
    hourly_limit: float | None = Field(None, ge=0, le=1e9)
    daily_limit: float | None = Field(None, ge=0, le=1e9)
    monthly_limit: float | None = Field(None, ge=0, le=1e9)
    per_request_limit: float | None = Field(None, ge=0, le=1e9)
    on_exceed: Literal["error", "cheapest"] = "error"
    pacing: Literal["cap", "target", "off"] = "cap"
    alert_thresholds: list[float] = Field([0.5, 0.8, 1.0], max_length=20)


class DeploymentIn(Body):
    id: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=3, max_length=300)
    provider: str = Field(min_length=1, max_length=100)
    api_base: str | None = Field(None, max_length=2000)
    api_key_env: str | None = Field(None, max_length=200)
    weight: float = Field(1.0, gt=0, le=1e6)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)


class LoadBalancingIn(Body):
    strategy: Literal["round_robin", "weighted", "least_latency", "least_busy"] = "round_robin"
    deployments: list[DeploymentIn] = Field(min_length=1, max_length=1000)
    allowed_fails: int = Field(3, ge=1, le=1000)
    fail_window_s: float = Field(60.0, gt=0, le=86_400)
    cooldown_s: float = Field(60.0, gt=0, le=86_400)


@router.put("/budgets", responses=_ERRORS)
def set_budget(body: BudgetIn, _: AdminKey, lib: RouterDep) -> list[dict[str, Any]]:
    """Set budgets; every replica on the database enforces them within a second."""
    lib.set_budget(**body.model_dump())
    return [s.to_dict() for s in lib.budget_status()]


@router.get("/budgets", responses=_ERRORS)
def list_budgets(_: AdminKey, lib: RouterDep) -> list[dict[str, Any]]:
    """Every budget with its window's spend, reservations, reset time and pacing factor."""
    return [s.to_dict() for s in lib.budget_status()]


@router.delete("/budgets", responses=_ERRORS)
def clear_budget(_: AdminKey, lib: RouterDep,
                 scope: str = Query("router", min_length=1, max_length=300),
                 window: Literal["hour", "day", "month", "request"] | None = None,
                 ) -> dict[str, int]:
    """Remove the budgets of a scope (one window's if ``window`` is given)."""
    return {"removed": lib.clear_budget(scope, window)}


@router.get("/budgets/alerts", responses=_ERRORS)
def budget_alerts(_: AdminKey, lib: RouterDep,
                  since: float = Query(0.0, ge=0)) -> list[dict[str, Any]]:
    """Threshold alerts since ``since`` (Unix time), oldest first."""
    return [a.to_dict() for a in lib.budget_alerts(since=since)]


@router.put("/load-balancing", responses=_ERRORS)
def set_load_balancing(body: LoadBalancingIn, _: AdminKey,
                       lib: RouterDep) -> list[dict[str, Any]]:
    """Serve models through these deployments with this strategy (this replica)."""
    statuses = lib.set_load_balancing(
        body.strategy, providers=[d.model_dump() for d in body.deployments],
        allowed_fails=body.allowed_fails, fail_window_s=body.fail_window_s,
        cooldown_s=body.cooldown_s)
    return [s.to_dict() for s in statuses]


@router.get("/deployments", responses=_ERRORS)
def deployments(_: AdminKey, lib: RouterDep) -> list[dict[str, Any]]:
    """Each deployment's health: cooldown, recent failures, in-flight calls, latency, rpm
    and tpm used in the last minute."""
    return [s.to_dict() for s in lib.deployment_status()]


@router.post("/prices/reload", responses=_ERRORS)
def reload_prices(request: Request, _: AdminKey, lib: RouterDep) -> dict[str, Any]:
    """Apply the configured LiteLLM price file (``BANDIT_ROUTER_PRICE_FILE``) now."""
    path = request.app.state.settings.price_file
    if not path:
        raise HTTPException(404, "no price file is configured (BANDIT_ROUTER_PRICE_FILE)")
    result = lib.load_prices(path)
    return {"changed": {k: {"input_price_per_1m": v[0], "output_price_per_1m": v[1]}
                        for k, v in result.changed.items()},
            "unchanged": list(result.unchanged), "unmatched": list(result.unmatched)}

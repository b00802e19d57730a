"""Statistics (admin), health and readiness (open), and Prometheus metrics (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import text

from bandit_router import health_alerts
from bandit_router.eval.reports import parse_time

from ..deps import AdminKey, FixedModelCheckDep, LearnerDep, MetricsDep, RouterDep
from ..schemas import ErrorOut

router = APIRouter(tags=["operations"])


@router.get("/v1/stats", responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                                    422: {"model": ErrorOut}})
def stats(_: AdminKey, lib: RouterDep,
          since: str | None = Query(None, max_length=64,
                                    description="count only the decisions made since this "
                                                "UTC day YYYY-MM-DD, ISO 8601 time or Unix "
                                                "seconds (default: every decision)")
          ) -> dict[str, Any]:
    """Traffic, quality and spend per model; savings against the strongest model. Over
    every decision, or since ``since``: a dashboard that refreshes often should ask for a
    window, which is read through an index, not the whole log. A bad ``since``: 422."""
    return lib.get_routing_stats(since=parse_time(since) if since is not None else None)


@router.get("/v1/admin/alerts", responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
def alerts(_: AdminKey, lib: RouterDep, learner: LearnerDep,
           fixed: FixedModelCheckDep) -> list[dict[str, Any]]:
    """The health conditions that hold now (``bandit_router.health_alerts``: failed calls
    over 10% in 10 minutes, the last hour's quality under 90% of the week's, the learner
    over 1,000 rewards behind), measured on the database, then the fixed-model alert
    (``bandit_router.fixed_model_alerts``: always one model beat the router over the last
    day, with evidence), read again at most every ``fixed_model_alert_every_s`` (10
    minutes); budget alerts are at ``/v1/admin/budgets/alerts``."""
    found = health_alerts(lib, learning_lag=learner.pending) + fixed.alerts(lib)
    return [a.to_dict() for a in found]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
def readyz(request: Request) -> Response:
    """Readiness: models loaded and the database reachable."""
    from ..errors import error_response

    lib = getattr(request.app.state, "router", None)
    if lib is None:
        return error_response(503, "NotReady", "the router is still loading")
    try:
        with lib.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return error_response(503, "NotReady", f"database unreachable: {type(exc).__name__}")
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}, 401: {"model": ErrorOut},
                       403: {"model": ErrorOut}})
def metrics(_: AdminKey, lib: RouterDep, m: MetricsDep) -> Response:
    """Prometheus text format: requests, latency, decisions by model, rewards, spend."""
    m.policy_version.set(lib.policy_version)
    m.budget_used.clear()
    m.budget_limit.clear()
    for status in lib.budget_status():
        if status.budget.window != "request":
            labels = (status.budget.scope, status.budget.window)
            m.budget_used.labels(*labels).set(status.used_usd)
            m.budget_limit.labels(*labels).set(status.budget.limit_usd)
    m.deployment_healthy.clear()
    for dep in lib.deployment_status():
        m.deployment_healthy.labels(dep.id, dep.model).set(1.0 if dep.healthy else 0.0)
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

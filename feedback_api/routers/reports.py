"""Reports (admin): cost (spend and requests by day or hour, model, provider and API key, and
the savings against a reference model, as JSON or CSV: :mod:`bandit_router.eval.reports`),
and the router against every fixed model on the traffic it served
(:mod:`bandit_router.eval.fixed`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from bandit_router.eval.fixed import fixed_models
from bandit_router.eval.reports import cost_report, parse_period

from ..deps import AdminKey, RouterDep
from ..schemas import ErrorOut

__all__ = ["CostReportOut", "CostRowOut", "EstimateOut", "FixedModelOut", "FixedModelsOut",
           "PeriodOut", "router"]

router = APIRouter(prefix="/v1/admin/reports", tags=["reports"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "The report as JSON, or as CSV with format=csv"},
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}


class CostRowOut(BaseModel):
    """One group (only the grouped fields are present), or the totals (no group field)."""

    model_config = ConfigDict(protected_namespaces=())

    day: str | None = None
    hour: str | None = None
    model: str | None = None
    provider: str | None = None
    key: str | None = None
    requests: int
    rewarded: int
    pending: int
    defaulted: int
    spend_usd: float
    reported_usd: float
    estimated_usd: float
    mean_quality: float | None
    reference_cost_usd: float
    savings_usd: float
    savings_pct: float | None


class PeriodOut(BaseModel):
    since: str | None
    until: str | None


class CostReportOut(BaseModel):
    """:meth:`bandit_router.eval.reports.CostReport.to_dict`."""

    group_by: list[str]
    since: float | None
    until: float | None
    period: PeriodOut
    reference_model: str | None
    reference_named: bool
    reference_fallbacks: int
    reference_quality: float | None
    reference_quality_n: int
    reference_quality_source: Literal["measured", "not measured"]
    routed_quality: float | None
    quality_kept: float | None
    rows: list[CostRowOut]
    total: CostRowOut


#: A report's period, as every report takes it (read by ``parse_period``).
Since = Annotated[str | None, Query(max_length=64, description="first UTC day YYYY-MM-DD "
                                    "(or an ISO 8601 time, or Unix seconds), included")]
Until = Annotated[str | None, Query(max_length=64, description="last UTC day YYYY-MM-DD, "
                                    "included (or an ISO 8601 time, or Unix seconds, "
                                    "excluded)")]


@router.get("/cost", response_model=CostReportOut, responses=_ERRORS)
def cost(_: AdminKey, lib: RouterDep, since: Since = None, until: Until = None,
         by: str = Query("day,model", max_length=100,
                         description="comma-separated groups among day, hour, model, provider, "
                                     "key (the API key id that made the request); empty: "
                                     "totals"),
         reference: str | None = Query(None, max_length=300,
                                       description="provider/model to measure savings "
                                                   "against (default: the strongest)"),
         format: Literal["json", "csv"] = "json") -> Response:
    """Spend (reported costs, plus the estimate of decisions without one) and requests per
    group; what the reference model would have cost on the same requests, the savings, and
    the measured quality of the routed traffic against the reference's. Warm-start history
    is left out. Unknown groups, a bad period or reference: 422."""
    start, end = parse_period(since, until)
    report = cost_report(lib, since=start, until=end, group_by=by, reference=reference)
    if format == "csv":
        return Response(report.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="cost.csv"'})
    return Response(report.to_json(indent=None), media_type="application/json")


class EstimateOut(BaseModel):
    """A mean with its interval (``null`` where there is none: no request, or one)."""

    value: float | None
    low: float | None
    high: float | None
    n: int


class FixedModelOut(BaseModel):
    """Always one model against the router, on the requests where it had a chance."""

    model_config = ConfigDict(protected_namespaces=())

    model: str
    events: int
    chosen: int
    support: float
    value: EstimateOut
    router: float | None
    difference: EstimateOut
    verdict: Literal["better", "worse", "no evidence"]


class FixedModelsOut(BaseModel):
    """:meth:`bandit_router.eval.fixed.FixedModelsReport.to_dict`."""

    since: float | None
    until: float | None
    level: float
    min_chance: float
    min_answers: int
    events: int
    router: EstimateOut
    rows: list[FixedModelOut]


@router.get("/fixed-models", response_model=FixedModelsOut,
            responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                       422: {"model": ErrorOut}})
def fixed(_: AdminKey, lib: RouterDep, since: Since = None, until: Until = None,
          level: float = Query(0.95, description="the intervals' confidence level: 0.9, "
                                                 "0.95 or 0.99"),
          arm: str | None = Query(None, max_length=64,
                                  description="one experiment arm's requests (default: the "
                                              "service's own router's)")) -> Response:
    """The router's mean reward on the rewarded requests of the period, and what always
    each model would have earned on them (inverse propensity, on the requests where the
    router gave it at least a 10% chance), paired against the router's, with a verdict
    where its answers and the interval say so. Warm-start history and default rewards
    are left out. A bad period or level: 422."""
    start, end = parse_period(since, until)
    report = fixed_models(lib, since=start, until=end, level=level, arm=arm)
    return Response(report.to_json(indent=None), media_type="application/json")

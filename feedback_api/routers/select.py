"""POST /v1/select: pick a model for a task."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Response

from bandit_router import (
    Constraints,
    Decision,
    InvalidConstraintsError,
    InvalidTaskError,
    UnknownModelError,
)

from ..deps import ExperimentsDep, MetricsDep, RateLimitedKey, RouterDep
from ..event_ids import stored_id
from ..experiments import UnknownExperimentError
from ..schemas import ErrorOut, SelectIn
from ..timing import timed

router = APIRouter(prefix="/v1", tags=["routing"])


class _UnknownName(UnknownModelError, InvalidConstraintsError):
    """An unknown model or provider named in constraints: still an UnknownModelError for
    typed clients, answered 422 (bad input) rather than 404 (missing resource)."""

_ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
           409: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut},
           429: {"model": ErrorOut}}


@router.post("/select", response_model=Decision, responses=_ERRORS)  # type: ignore[arg-type]
def select(body: SelectIn, key: RateLimitedKey, lib: RouterDep, metrics: MetricsDep,
           experiments: ExperimentsDep, response: Response) -> Decision:
    """Choose a model for the task under the constraints. The decision is logged before the
    answer; call the model yourself, then post its outcome to the event's reward. The
    ``Server-Timing`` header says how long embedding the task took, and the rest of the
    routing."""
    constraints = Constraints(**body.constraints.model_dump(exclude_none=True)) \
        if body.constraints else None
    meta = {"owner": key.tenant, "unit_key": body.unit_key, "user": body.metadata or {}}
    options: dict[str, Any] = {
        "constraints": constraints, "cost_weight": body.cost_weight,
        "latency_weight": body.latency_weight, "input_tokens": body.input_tokens,
        "event_id": None if body.event_id is None else stored_id(key, body.event_id),
        # whose budgets apply and whose spend this is: the API key
        "tenant": key.tenant_tag}
    try:
        if body.experiment is not None:
            if body.unit_key is None:
                raise InvalidTaskError("an experiment needs a unit_key to assign an arm")
            experiment, _ = experiments.get(body.experiment)
            unit_key = body.unit_key
            d, timing = timed(lib, lambda: experiment.select(
                body.prompt(), unit_key=unit_key, metadata=meta, **options))
        else:
            d, timing = timed(lib, lambda: lib.select(body.prompt(), metadata=meta, **options))
    except UnknownExperimentError:
        raise
    except UnknownModelError as exc:  # a name in the constraints, not a missing resource
        raise _UnknownName(str(exc)) from None
    metrics.decisions.labels(f"{d.provider}/{d.model}").inc()
    metrics.observe_select(timing.embed_s, timing.route_s)
    response.headers["server-timing"] = timing.header()
    if body.event_id is not None:
        d = replace(d, event_id=body.event_id)  # the caller's name for it
    return d  # the library's own type is the response schema

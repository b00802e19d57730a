"""A/B experiments between routing strategies (admin)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Path

from bandit_router import InvalidInputError
from bandit_router.eval.experiments import Experiment
from bandit_router.eval.offpolicy import Estimate

from ..deps import AdminKey, ExperimentsDep
from ..schemas import (
    ArmOut,
    ErrorOut,
    EstimateOut,
    ExperimentIn,
    ExperimentOut,
    PromoteIn,
)

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

_ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
           422: {"model": ErrorOut}}
Name = Path(..., min_length=1, max_length=64)


def _estimate(e: Estimate) -> EstimateOut:
    def finite(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return EstimateOut(value=finite(e.value), low=finite(e.low), high=finite(e.high), n=e.n)


def _report(experiment: Experiment) -> ExperimentOut:
    report = experiment.report()
    arms = {name: ArmOut(share=s.share, requests=s.requests, quality=_estimate(s.quality),
                         cost_usd=_estimate(s.cost_usd), reward=_estimate(s.reward),
                         latency_s=_estimate(s.latency_s) if s.latency_s is not None else None,
                         fixed_model=s.fixed_model,
                         models=list(s.models) if s.models is not None else None)
            for name, s in report.arms.items()}
    return ExperimentOut(name=report.name, status=report.status, promoted=report.promoted,
                         control=report.control, arms=arms,
                         comparisons=list(report.comparisons))


@router.post("", response_model=ExperimentOut, status_code=201,
             responses=_ERRORS)  # type: ignore[arg-type]
def create(body: ExperimentIn, _: AdminKey, registry: ExperimentsDep) -> ExperimentOut:
    """Start an experiment: each arm is a router with its own settings and policy, optionally
    restricted to some catalog models (``models``) or to one (``fixed_model``, logged with
    probability 1: a control such as "always the strongest"); units are assigned by a hash
    of the experiment's name and the unit key, in the given shares. A model the catalog
    lacks is a 422 (``UnknownModelError``). The definition is stored: a restart keeps it."""
    if body.shares is not None and set(body.shares) != set(body.arms):
        raise InvalidInputError("shares must name exactly the arms")
    arms = {name: spec.model_dump(exclude_none=True) for name, spec in body.arms.items()}
    return _report(registry.create(body.name, arms, body.shares))


@router.get("", response_model=list[str], responses=_ERRORS)  # type: ignore[arg-type]
def names(_: AdminKey, registry: ExperimentsDep) -> list[str]:
    return registry.names()


@router.get("/{name}", response_model=ExperimentOut,
            responses=_ERRORS)  # type: ignore[arg-type]
def report(_: AdminKey, registry: ExperimentsDep, name: str = Name) -> ExperimentOut:
    """Per arm, live: requests, quality, cost and reward with intervals, and each arm against
    the first (the control): difference, interval, p-value, significance."""
    experiment, _stopped = registry.get(name)
    return _report(experiment)


@router.post("/{name}/promote", response_model=ExperimentOut,
             responses=_ERRORS)  # type: ignore[arg-type]
def promote(body: PromoteIn, _: AdminKey, registry: ExperimentsDep,
            name: str = Name) -> ExperimentOut:
    """Send all new traffic of the experiment to one arm."""
    experiment, _stopped = registry.get(name)
    if body.arm not in experiment.arms:
        raise InvalidInputError(f"experiment {name!r} has no arm {body.arm!r}")
    return _report(registry.promote(name, body.arm))


@router.post("/{name}/stop", response_model=ExperimentOut,
             responses=_ERRORS)  # type: ignore[arg-type]
def stop(_: AdminKey, registry: ExperimentsDep, name: str = Name) -> ExperimentOut:
    """End the experiment: all its traffic goes to the first arm, the control."""
    experiment, _stopped = registry.get(name)
    return _report(registry.promote(name, experiment.control, stop=True))

"""The feedback endpoint, and reading an event back."""

from __future__ import annotations

from fastapi import APIRouter, Path

from ..deps import ClientKey, LearnerDep, MetricsDep, RateLimitedKey, RouterDep
from ..event_ids import find_event, shown_id
from ..schemas import ErrorOut, EventOut, RewardIn, RewardOut

router = APIRouter(prefix="/v1/events", tags=["feedback"])

_ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
           409: {"model": ErrorOut}, 410: {"model": ErrorOut}, 413: {"model": ErrorOut},
           422: {"model": ErrorOut}, 429: {"model": ErrorOut}}
EventId = Path(..., min_length=1, max_length=128)


@router.post("/{event_id}/reward", response_model=RewardOut,
             responses=_ERRORS)  # type: ignore[arg-type]
def reward(body: RewardIn, key: RateLimitedKey, lib: RouterDep, learner: LearnerDep,
           metrics: MetricsDep, event_id: str = EventId) -> RewardOut:
    """Report what happened. The reward is stored durably before the answer; the policy
    learns it in the background right after. The earliest reward of an event wins."""
    # who owns the event and which model it chose never change: a decision this process
    # just logged is at hand without a read (whether it has a reward, reward() settles)
    record = find_event(lib, key, event_id, fresh=False)
    receipt = lib.reward(record.event_id, quality=body.score(), cost_usd=body.cost_usd,
                         latency_s=body.latency_s, output_tokens=body.output_tokens,
                         error=body.error, learn=False)
    learner.notify()
    metrics.reward(error=body.error, quality=receipt.quality,
                   model=f"{record.provider}/{record.model}", cost_usd=receipt.cost_usd)
    return RewardOut(event_id=event_id, reward=receipt.reward, quality=receipt.quality,
                     cost_usd=receipt.cost_usd, latency_s=receipt.latency_s,
                     policy_version=receipt.policy_version, held_back=receipt.held_back)


@router.get("/{event_id}", response_model=EventOut,
            responses=_ERRORS)  # type: ignore[arg-type]
def get_event(key: ClientKey, lib: RouterDep, event_id: str = EventId) -> EventOut:
    """The stored decision and its reward."""
    record = find_event(lib, key, event_id)
    data = record.to_dict()
    data["event_id"] = shown_id(key, record.event_id)
    meta = data.pop("metadata")
    data.pop("arm")  # the router's tag; the service reports the experiment's arm name
    if "owner" in meta:  # selected through this service: {"owner", "unit_key", "user"}
        user = meta.get("user") if isinstance(meta.get("user"), dict) else {}
        unit = meta.get("unit_key") if isinstance(meta.get("unit_key"), str) else None
    else:  # logged by the library directly, sharing the database
        user, unit = meta, None

    def text(key: str) -> str | None:
        value = meta.get(key)
        return value if isinstance(value, str) and "owner" in meta else None

    return EventOut(**data, metadata=user, unit_key=unit, experiment=text("experiment"),
                    arm=text("arm"))

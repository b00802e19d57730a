"""The one builder of logged decisions (:class:`EventRow`): a live decision
(:meth:`Router.select`) and the two kinds of history (``_history``) are logged alike, so that
learning, rebuilds, reports and off-policy evaluation read one shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from ._catalog import ModelSpec
from ._constraints import Estimate
from ._tables import EventRow, new_row

__all__ = ["ActionRecord", "action_records", "event_row"]


class _EstimateRecord(TypedDict):
    quality: float
    cost_usd: float
    latency_s: float
    output_tokens: float


class ActionRecord(TypedDict):
    """One eligible model as its decision saw it: the features the policy scored, the prices
    in force (a reward with output tokens but no cost is priced with them) and the estimate
    (a reward without cost or latency takes it)."""

    key: str
    features: dict[str, dict[str, float]]
    input_price_per_1m: float
    output_price_per_1m: float
    estimate: _EstimateRecord


def action_records(specs: Sequence[ModelSpec], estimates: Sequence[Estimate],
                   features: Sequence[dict[str, dict[str, float]]]) -> list[ActionRecord]:
    """The records of the eligible models, in the order the policy saw them."""
    return [{"key": s.key, "features": a,
             "input_price_per_1m": s.input_price_per_1m,
             "output_price_per_1m": s.output_price_per_1m,
             "estimate": {"quality": e.quality, "cost_usd": e.cost_usd,
                          "latency_s": e.latency_s, "output_tokens": e.output_tokens}}
            for s, e, a in zip(specs, estimates, features, strict=True)]


def event_row(*, id: str, created_at: float, status: str, task_hash: str, embedder: str,
              embedding: npt.ArrayLike, context: Mapping[str, Any],
              actions: list[ActionRecord], chosen: int,
              probability: float, pmf: list[float], cost_weight: float,
              latency_weight: float, input_tokens: int, reference_key: str,
              reference_cost_usd: float, constraints: Mapping[str, Any], policy_version: int,
              meta: Mapping[str, Any], arm: str, task_text: str | None = None,
              tenant: str | None = None, reserved_usd: float | None = None,
              deployment: str | None = None) -> EventRow:
    """A decision to log: ``chosen`` indexes ``actions`` (the eligible models'
    :func:`action_records`; several events of one task may share them), drawn with
    ``probability`` from ``pmf``. The embedding is stored as float32, as the policy learns
    from it."""
    return new_row(
        EventRow, id=id, created_at=created_at, status=status, task_hash=task_hash,
        task_text=task_text, embedder=embedder,
        embedding=np.asarray(embedding, np.float32).tobytes(), context=context,
        actions=actions, chosen=chosen, model_key=actions[chosen]["key"],
        probability=probability, pmf=pmf,
        cost_weight=cost_weight, latency_weight=latency_weight, input_tokens=input_tokens,
        reference_key=reference_key, reference_cost_usd=reference_cost_usd,
        constraints=constraints, policy_version=policy_version, meta=meta,
        arm=arm, tenant=tenant, reserved_usd=reserved_usd, deployment=deployment)

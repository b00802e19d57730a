"""Per-request estimates of each model and the action features the policy sees.

How the cost weight stays correct when it changes: the policy is never trained on one fixed
trade-off. Each action carries the feature ``cost = cost_weight x estimated cost of this
request`` (and ``latency = latency_weight x estimated latency``), and the policy learns
``reward = quality - cost_weight x cost - latency_weight x latency``. The reward is linear
in that feature with a coefficient of -1, so a different weight per request, or a new price,
moves the decision at once, with no retraining and no stale trade-off baked into the weights.

That coefficient is not learned: with one fixed weight and fixed prices the feature would
move in lockstep with the model's identity and VW could give it any coefficient (a learned
one once made a model *more* attractive as its price rose). The policy pins it (see
``VWPolicy(pinned=...)``), so VW learns quality per model and task, and the known cost term
enters every prediction exactly. Price is deliberately not a feature of its own: quality
depends on the model, not on what it costs.

"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ._catalog import ModelSpec
from ._constraints import Estimate
from ._memory import Recall

__all__ = ["PINNED", "action_features", "estimate"]


#: Coefficients the policy must not learn, in reward units: see the module docstring.
PINNED: dict[str, dict[str, float]] = {"A": {"cost": -1.0, "latency": -1.0}}


def _blend(total: float, count: float, prior: float, strength: float) -> float:
    return (total + strength * prior) / (count + strength)


def estimate(spec: ModelSpec, recall: Recall, pos: int, *, input_tokens: int,
             global_stats: Mapping[str, float] | None, prior_strength: float,
             default_output_tokens: int) -> Estimate:
    """What ``spec`` should give on this request, from its neighbours, its history, its prior.

    Quality: the neighbours' mean quality for this model, shrunk towards the model's overall
    mean (itself shrunk towards the catalog prior) by ``prior_strength`` pseudo-observations.
    Output tokens: neighbours', else the model's overall mean, else the catalog's typical
    value. Latency: the measured mean once there is one, else the catalog prior.
    """
    prior = spec.quality_score
    out_tokens = float(spec.typical_output_tokens or default_output_tokens)
    latency = spec.avg_latency
    if global_stats:
        n = global_stats["n"]
        if not math.isnan(global_stats["quality"]):
            prior = _blend(global_stats["quality"] * n, n, prior, prior_strength)
        if not math.isnan(global_stats["output_tokens"]):
            out_tokens = global_stats["output_tokens"]
        if not math.isnan(global_stats["latency_s"]):
            latency = global_stats["latency_s"]
    count = float(recall.count[pos])
    quality = _blend(float(recall.quality_sum[pos]), count, prior, prior_strength)
    if recall.tokens_count[pos] > 0:
        out_tokens = float(recall.tokens_sum[pos] / recall.tokens_count[pos])
    cost = spec.cost_usd(input_tokens=input_tokens, output_tokens=out_tokens)
    return Estimate(key=spec.key, quality=quality, evidence=count / (count + prior_strength),
                    cost_usd=cost, latency_s=latency, output_tokens=out_tokens)


def action_features(spec: ModelSpec, est: Estimate, *, cost_weight: float,
                    latency_weight: float) -> dict[str, dict[str, float]]:
    """The namespaces of one action: ``M`` model identity (crossed with the task by the
    policy's interactions), ``P`` provider, ``A`` the cost-aware numeric features."""
    return {
        "M": {spec.key: 1.0},
        "P": {spec.provider: 1.0},
        "A": {
            "cost": cost_weight * est.cost_usd,
            "latency": latency_weight * est.latency_s,
            "quality": est.quality,
            "evidence": est.evidence,
        },
    }

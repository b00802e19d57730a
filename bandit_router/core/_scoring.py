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

How far to trust the neighbours' estimate is learned per model: ``Q`` repeats ``A``'s
``quality`` and ``evidence`` so that an interaction ``QM`` (see
:attr:`PolicyConfig.interactions`) can give each model its own coefficients on them (the
estimate of a model the router seldom picks is mostly its prior; a model whose quality varies
with the task gains more from its neighbours). ``Q`` adds no linear terms of its own
(``VWPolicy(crossed_only=...)``): ``A``'s stay the only ones, so without ``QM`` the policy
learns exactly what it learned before ``Q`` existed. Events logged before then have no ``Q``;
:func:`logged_action` fills it from their ``A``, so a rebuild from the log teaches ``QM``
from them too.

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from . import _namespaces as ns
from ._catalog import ModelSpec
from ._constraints import Estimate
from ._memory import Recall

__all__ = ["BASELINE", "CROSSED_ONLY", "EVIDENCE", "GROUPS", "LEARNED_RANGE", "PINNED",
           "action_features", "difficulty", "estimates", "logged_action"]


#: Coefficients the policy must not learn, in reward units: see the module docstring.
PINNED: dict[str, dict[str, float]] = {ns.ESTIMATE: {"cost": -1.0, "latency": -1.0}}
#: Namespaces that only enter the policy through its interactions: see the module docstring.
CROSSED_ONLY: tuple[str, ...] = (ns.CROSSED_ESTIMATE,)
#: An action's reward before the policy has learned from it: the neighbours' estimate of its
#: quality, less its cost and latency terms.
BASELINE: dict[str, dict[str, float]] = {
    ns.ESTIMATE: {"quality": 1.0, "cost": -1.0, "latency": -1.0}}
#: Context namespaces whose features group tasks for Thompson sampling's posterior: the task
#: clusters, coarse codebook first (see ``policies._thompson``).
GROUPS: tuple[str, ...] = (ns.CLUSTERS,)
#: Where the learned part of the reward (the reward less its pinned terms) lies: a quality.
LEARNED_RANGE: tuple[float, float] = (0.0, 1.0)
#: The action feature that says how many outcomes stand behind its quality estimate: the
#: neighbours' count ``n`` as ``n / (n + prior_strength)`` (see :func:`estimates`).
EVIDENCE: tuple[str, str] = (ns.ESTIMATE, "evidence")


def estimates(specs: Sequence[ModelSpec], recall: Recall, *, input_tokens: int,
              stats: Mapping[str, Mapping[str, float]], prior_strength: float,
              default_output_tokens: int, task_difficulty: bool) -> list[Estimate]:
    """What each of ``specs`` should give on this request (``recall`` is aligned with them),
    from its neighbours, its history (``stats``, by model key), its prior.

    Quality: the neighbours' mean quality for this model, shrunk towards the model's overall
    mean (itself shrunk towards the catalog prior) by ``prior_strength`` pseudo-observations.
    With ``task_difficulty`` that overall mean is first moved by the task's difficulty: how
    the neighbours' outcomes, whichever models gave them, differed from those models'
    overall means (:func:`difficulty`). A model few neighbours answered then looks as hard
    pressed by a hard task as the models that answered them, instead of better than they by
    default: without it, exploration picks the seldom-tried models on the hardest tasks and
    they look worse than they are. Output tokens: neighbours', else the model's overall
    mean, else the catalog's typical value. Latency: the measured mean once there is one,
    else the catalog prior.
    """
    counts, quality_sums = recall.count.tolist(), recall.quality_sum.tolist()
    token_sums, token_counts = recall.tokens_sum.tolist(), recall.tokens_count.tolist()
    isnan = math.isnan
    knowns = [stats.get(spec.key) for spec in specs]
    means = []
    for spec, known in zip(specs, knowns, strict=True):
        prior = spec.quality_score
        if known and not isnan(known["quality"]):
            n = known["n"]
            prior = (known["quality"] * n + prior_strength * prior) / (n + prior_strength)
        means.append(prior)
    shift = (difficulty(counts, quality_sums, means, prior_strength=prior_strength)
             if task_difficulty else 0.0)
    out = []
    for pos, spec in enumerate(specs):
        prior = means[pos]
        if shift:
            prior = min(max(prior + shift, 0.0), 1.0)
        out_tokens = float(spec.typical_output_tokens or default_output_tokens)
        latency = spec.avg_latency
        known = knowns[pos]
        if known:
            if not isnan(known["output_tokens"]):
                out_tokens = known["output_tokens"]
            if not isnan(known["latency_s"]):
                latency = known["latency_s"]
        count = counts[pos]
        quality = (quality_sums[pos] + prior_strength * prior) / (count + prior_strength)
        if token_counts[pos] > 0:
            out_tokens = token_sums[pos] / token_counts[pos]
        cost = spec.cost_usd(input_tokens=input_tokens, output_tokens=out_tokens)
        out.append(Estimate(key=spec.key, quality=quality,
                            evidence=count / (count + prior_strength), cost_usd=cost,
                            latency_s=latency, output_tokens=out_tokens))
    return out


def difficulty(counts: Sequence[float], quality_sums: Sequence[float],
               means: Sequence[float], *, prior_strength: float) -> float:
    """How a task's neighbours did against their models' overall ``means`` (aligned with
    ``counts`` and ``quality_sums``, each model's outcomes among the neighbours): the mean
    of ``outcome - mean of its model`` over every neighbour's outcome, shrunk towards 0 by
    ``prior_strength`` pseudo-outcomes. Negative for a task harder than its models' usual.

    >>> round(difficulty([4, 0], [1.0, 0.0], [0.75, 0.5], prior_strength=2.0), 3)
    -0.333
    """
    residual = sum(q - n * m for n, q, m in zip(counts, quality_sums, means, strict=True) if n)
    return residual / (sum(counts) + prior_strength)


def action_features(spec: ModelSpec, est: Estimate, *, cost_weight: float,
                    latency_weight: float) -> dict[str, dict[str, float]]:
    """The namespaces of one action: ``M`` model identity (crossed with the task by the
    policy's interactions), ``P`` provider, ``A`` the cost-aware numeric features, ``Q`` the
    neighbours' estimate again, for crossing with ``M`` only."""
    return {
        ns.MODEL: {spec.key: 1.0},
        ns.PROVIDER: {spec.provider: 1.0},
        ns.ESTIMATE: {
            "cost": cost_weight * est.cost_usd,
            "latency": latency_weight * est.latency_s,
            "quality": est.quality,
            "evidence": est.evidence,
        },
        ns.CROSSED_ESTIMATE: {"quality": est.quality, "evidence": est.evidence},
    }


def logged_action(features: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """An action's features as its event stored them, with ``Q`` filled from ``A`` where the
    event was logged before ``Q`` existed (see the module docstring); others as they are.

    >>> logged_action({"M": {"m": 1.0}, "A": {"cost": 0.1, "quality": 0.7, "evidence": 0.5}})["Q"]
    {'quality': 0.7, 'evidence': 0.5}
    """
    if ns.CROSSED_ESTIMATE in features or ns.ESTIMATE not in features:
        return features
    known = features[ns.ESTIMATE]
    return {**features, ns.CROSSED_ESTIMATE: {k: known[k] for k in ("quality", "evidence")
                                              if k in known}}

"""Off-policy evaluation: what another strategy would have earned on the traffic you logged.

This is Azure Personalizer's "offline evaluation". Every decision the router logs keeps its
context, the eligible actions, the chosen one and the probability it had; with the reward,
that is enough to estimate the value of a *different* policy without deploying it:

- IPS: ``mean(w * r)`` with ``w = pi(a | x) / p``, unbiased, high variance;
- SNIPS (self-normalised): ``sum(w * r) / sum(w)``, slightly biased, steadier;
- DR (doubly robust): a reward model's prediction for the target policy, corrected by the
  importance-weighted error of that model on the logged action.

Each comes with a normal-approximation confidence interval (delta method for SNIPS).
:func:`evaluate_setting` replays a router's log through a fresh policy with other settings
(exploration, or a cost weight, whose rewards are recomputed from the logged quality and
cost), learning as it goes as the live policy would have: progressive validation.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 20_000
>>> logged = rng.integers(2, size=n)            # uniform logging over two actions
>>> reward = np.where(logged == 1, rng.random(n) < 0.8, rng.random(n) < 0.3).astype(float)
>>> w = np.where(logged == 1, 1.0, 0.0) / 0.5     # target: always action 1
>>> est = ips(w, reward)
>>> est.low < 0.8 < est.high
True
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core import _namespaces as ns
from ..core._config import PolicyConfig
from ..core._objective import Objective
from ..core._results import Estimate
from ..core._scoring import BASELINE, CROSSED_ONLY, PINNED, logged_action
from ..core.policies import Features, Policy, VWPolicy

__all__ = [
    "Estimate",
    "LoggedEvent",
    "OffPolicyReport",
    "Z",
    "dr",
    "evaluate",
    "evaluate_setting",
    "ips",
    "logged_events",
    "mean_estimate",
    "normal_interval",
    "snips",
]

Array = npt.NDArray[np.float64]
#: Two-sided normal quantiles of the confidence levels offered.
Z = {0.90: 1.6449, 0.95: 1.96, 0.99: 2.5758}


def normal_interval(value: float, sd: float, n: int, level: float) -> Estimate:
    """``value`` with the normal interval of a mean of ``n`` terms of standard deviation
    ``sd`` (unbounded for fewer than two)."""
    half = Z[level] * sd / math.sqrt(n) if n > 1 else math.inf
    return Estimate(value=value, low=value - half, high=value + half, n=n)


def _interval(terms: Array, value: float, level: float) -> Estimate:
    n = len(terms)
    return normal_interval(value, float(np.std(terms, ddof=1)) if n > 1 else 0.0, n, level)


def mean_estimate(values: Array, *, level: float = 0.95) -> Estimate:
    """The mean of ``values`` with its normal-approximation interval (NaN when empty)."""
    values = np.asarray(values, float)
    if len(values) == 0:
        return Estimate(float("nan"), -math.inf, math.inf, 0)
    return _interval(values, float(values.mean()), level)


def ips(w: Array, r: Array, *, level: float = 0.95) -> Estimate:
    """Inverse propensity scoring."""
    terms = np.asarray(w) * np.asarray(r)
    return _interval(terms, float(terms.mean()), level)


def snips(w: Array, r: Array, *, level: float = 0.95) -> Estimate:
    """Self-normalised IPS, with a delta-method interval."""
    w, r = np.asarray(w, float), np.asarray(r, float)
    total = w.sum()
    if total <= 0:
        return Estimate(float("nan"), -math.inf, math.inf, len(w))
    value = float((w * r).sum() / total)
    terms = w * (r - value) / w.mean()  # influence function of the ratio
    return _interval(terms, value, level)


def dr(w: Array, r: Array, predicted_logged: Array, predicted_target: Array, *,
       level: float = 0.95) -> Estimate:
    """Doubly robust: ``predicted_target`` is the reward model's expected reward under the
    target policy, ``predicted_logged`` its prediction for the logged action."""
    terms = (np.asarray(predicted_target) + np.asarray(w)
             * (np.asarray(r) - np.asarray(predicted_logged)))
    return _interval(terms, float(terms.mean()), level)


@dataclass(frozen=True)
class LoggedEvent:
    """One rewarded decision as logged: enough to replay it through another policy."""

    context: dict[str, Any]
    actions: list[dict[str, dict[str, float]]]
    keys: list[str]
    chosen: int
    probability: float
    reward: float
    quality: float
    cost_usd: float
    latency_s: float | None
    cost_weight: float
    latency_weight: float


def logged_events(router: Any, *, limit: int | None = None) -> list[LoggedEvent]:
    """The router's rewarded decisions in learning order (default rewards left out: they
    say nothing about the action)."""
    out: list[LoggedEvent] = []
    seq = 0
    while limit is None or len(out) < limit:
        batch = router.store.learn_log(seq, limit=2000)
        if not batch:
            break
        for item in batch:
            seq = item.reward.seq
            e, r = item.event, item.reward
            if r.is_default:
                continue
            out.append(LoggedEvent(
                context={ns.EMBEDDING: np.frombuffer(e.embedding, np.float32), **e.context},
                actions=[logged_action(a["features"]) for a in e.actions],
                keys=[a["key"] for a in e.actions],
                chosen=e.chosen, probability=e.probability, reward=r.reward,
                quality=r.quality, cost_usd=r.cost_usd, latency_s=r.latency_s,
                cost_weight=e.cost_weight, latency_weight=e.latency_weight))
    return out[:limit] if limit is not None else out


@dataclass(frozen=True)
class OffPolicyReport:
    ips: Estimate
    snips: Estimate
    dr: Estimate
    logged: Estimate  # the logged policy's own mean reward, for comparison
    effective_sample_size: float


def evaluate(events: Sequence[LoggedEvent],
             target: Callable[[Features, Sequence[Features]], Sequence[float]], *,
             reward: Callable[[LoggedEvent], float] | None = None,
             actions: Callable[[LoggedEvent], list[dict[str, dict[str, float]]]] | None = None,
             learn: Callable[[LoggedEvent, list[dict[str, dict[str, float]]], float],
                             None] | None = None,
             level: float = 0.95) -> OffPolicyReport:
    """Estimate the value of ``target`` (a function giving a distribution over the actions)
    on the logged events. ``reward`` recomputes an event's reward for the target objective,
    ``actions`` its action features; ``learn`` lets the target learn after each event
    (progressive validation). DR's reward model: each model's running mean reward so far."""
    n = len(events)
    if n == 0:
        raise ValueError("no logged events to evaluate on")
    w, r, pred_logged, pred_target, logged_r = (np.zeros(n) for _ in range(5))
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for i, ev in enumerate(events):
        acts = actions(ev) if actions is not None else ev.actions
        value = reward(ev) if reward is not None else ev.reward
        pmf = np.asarray(target(ev.context, acts), float)
        pmf = pmf / pmf.sum()
        mean_all = sum(sums.values()) / max(1, sum(counts.values()))
        guess = np.array([sums[k] / counts[k] if counts[k] else mean_all for k in ev.keys])
        w[i] = pmf[ev.chosen] / max(ev.probability, 1e-6)
        r[i] = value
        pred_logged[i] = guess[ev.chosen]
        pred_target[i] = float(pmf @ guess)
        logged_r[i] = value
        key = ev.keys[ev.chosen]
        sums[key] += value
        counts[key] += 1
        if learn is not None:
            learn(ev, acts, value)
    ess = float(w.sum() ** 2 / max((w**2).sum(), 1e-12))
    return OffPolicyReport(ips=ips(w, r, level=level), snips=snips(w, r, level=level),
                           dr=dr(w, r, pred_logged, pred_target, level=level),
                           logged=mean_estimate(logged_r, level=level),
                           effective_sample_size=ess)


def evaluate_setting(events: Sequence[LoggedEvent], *, policy: PolicyConfig | None = None,
                     cost_weight: float | None = None, input_dim: int | None = None,
                     level: float = 0.95) -> OffPolicyReport:
    """What a router with other settings would have earned on this traffic: a fresh VW policy
    with ``policy``'s settings (default: the router's defaults), judged by ``cost_weight``
    (default: each event's own), learning from the log as it goes."""
    target: Policy = VWPolicy(policy or PolicyConfig(), input_dim=input_dim, pinned=PINNED,
                              crossed_only=CROSSED_ONLY, baseline=BASELINE)

    def objective(ev: LoggedEvent) -> float:
        if cost_weight is None:
            return ev.reward
        return Objective(cost_weight, ev.latency_weight).reward(ev.quality, ev.cost_usd,
                                                               ev.latency_s or 0.0)

    def reweighted(ev: LoggedEvent) -> list[dict[str, dict[str, float]]]:
        if cost_weight is None or ev.cost_weight == 0:
            return ev.actions
        scale = cost_weight / ev.cost_weight  # the cost feature is weight x estimated cost
        return [{**a, ns.ESTIMATE: {**a[ns.ESTIMATE], "cost": a[ns.ESTIMATE]["cost"] * scale}}
                for a in ev.actions]

    # ``evaluate`` asks for an event's distribution and then learns that event, on the same
    # action list: the policy's memo of the decision goes with the update, so the example is
    # formatted once; each decision's draw (a randomised policy's randomness) is seeded
    draws = np.random.default_rng(target.seed)
    memos: dict[int, object] = {}

    def pmf(context: Features, acts: Sequence[Features]) -> list[float]:
        choice = target.decide(context, acts, draw=float(draws.random()))
        memos[id(acts)] = choice.memo
        return choice.pmf

    def learn(ev: LoggedEvent, acts: list[dict[str, dict[str, float]]], value: float) -> None:
        target.learn(ev.context, acts, ev.chosen, value, ev.probability,
                     memo=memos.pop(id(acts), None))

    return evaluate(events, pmf, reward=objective, actions=reweighted, learn=learn,
                    level=level)

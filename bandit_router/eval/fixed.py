"""The router against every fixed model, on the traffic it served: from its own log.

The router's promise is to beat the best fixed choice of model on your traffic. Every
decision logs the probability the router gave each eligible model (its ``pmf``), so what
*always model j* would have earned on the same requests is estimated without deploying it
(inverse propensity scoring): on each rewarded request where *j* was eligible, the reward
over the probability *j* had when *j* answered, 0 otherwise. The difference from the
router's own reward on the same requests is paired, request by request, and comes with its
normal-approximation interval: *better* or *worse* only when the interval is wholly on one
side of zero, *no evidence* otherwise.

An estimate stands only on what the router explored, where inverse propensities are
steady: each model is judged on the requests where the router gave it at least a
:data:`MIN_CHANCE` chance (``support`` is their share of the requests where it was
eligible; each weight is then at most 10), and a verdict needs at least :data:`MIN_ANSWERS`
of its answers among them (fewer: *no evidence*, whatever the interval, which a handful of
answers makes too narrow). Checked on a replay of MMLU-Pro (10,225 requests, weight 20,
every model's outcome known): over all the requests where a model had any chance, a few
answers at probabilities near 0.002 made the estimates heavy-tailed (the best model's 3.9
of its standard errors under the truth); from a 10% chance on, every model with 30 answers
or more was within 1.4 of them. Rewards are the logged ones (each request's own cost
weight); warm-start history and default rewards are left out, which assumes that whether a
reward arrives does not depend on the model that answered. With many models, one verdict
among them may be chance (each is a 95% interval, by default). This detects; it does not
switch: measured on replays, a net that served the best-estimated model once its interval
cleared zero never found the evidence where the router was under its hull
(``docs/decisions.md``).

>>> from bandit_router import Router
>>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
>>> router = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
>>> for i in range(40):
...     d = router.select(f"Translate sentence {i} to French", event_id=f"e{i}")
...     _ = router.reward(d.event_id, quality=0.9 if d.model == "polyglot" else 0.5,
...                       cost_usd=0.0001)
>>> report = fixed_models(router)
>>> report.events, len(report.rows) == len(router.catalog)
(40, True)
>>> row = report.row("openlang/polyglot")
>>> row.events <= 40, row.verdict in ("better", "worse", "no evidence")
(True, True)
>>> router.close()
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

from sqlalchemy import select

from ..core._errors import InvalidInputError
from ..core._results import Estimate
from ..core._store import EventRow, RewardRow, Store
from ..router._router import Router
from .offpolicy import Z, normal_interval
from .reports import check_period, store_of

__all__ = ["MIN_ANSWERS", "MIN_CHANCE", "FixedModel", "FixedModelsReport", "fixed_models"]

Verdict = Literal["better", "worse", "no evidence"]

#: the lowest probability an importance weight divides by (a logged 0 cannot be chosen)
_MIN_P = 1e-6
#: a model's answers, among the requests it is judged on, below which no verdict is given
MIN_ANSWERS = 30
#: the least probability the router gave a model on a request for the request to judge it by
MIN_CHANCE = 0.1


@dataclass(frozen=True, slots=True)
class FixedModel:
    """Always one model, against the router, on the rewarded requests where the router gave
    it at least a :data:`MIN_CHANCE` chance (``events`` of them, ``support`` of those where
    it was eligible; ``chosen``: the ones it answered): ``value`` its estimated mean reward
    there, ``router`` the router's own, ``difference`` always-it less the router (paired),
    and the verdict."""

    model: str
    events: int
    chosen: int
    support: float
    value: Estimate
    router: float
    difference: Estimate
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class FixedModelsReport:
    """:func:`fixed_models`' answer: the router's mean reward over the period's rewarded
    requests, and one :class:`FixedModel` per model ever eligible: those with at least
    :data:`MIN_ANSWERS` answers first, each group by how far always-it is above the router
    (each model is judged on its own requests: the values are no leaderboard)."""

    since: float | None
    until: float | None
    level: float
    events: int
    router: Estimate
    rows: tuple[FixedModel, ...]

    def row(self, model: str) -> FixedModel:
        """The row of ``model`` (``provider/model``); :class:`KeyError` if it has none."""
        for r in self.rows:
            if r.model == model:
                return r
        raise KeyError(model)

    def beaten_by(self, *, family_error: float = 0.05) -> list[tuple[FixedModel, float]]:
        """The models that beat the router with evidence across them all, each with the
        difference it had to clear, the furthest above first. Of the ``k`` models with the
        answers a verdict needs (:data:`MIN_ANSWERS`), those whose difference is above zero
        by more than a one-sided normal test at ``family_error / k`` asks (Bonferroni: in
        one reading of the log, a chance win among the ``k`` raises this at most
        ``family_error`` of the time), and never by less than their own verdict asks: each
        one named is *better* in the report too.

        >>> from bandit_router.core._results import Estimate
        >>> def row(model, low, value, high):
        ...     return FixedModel(model, 900, 300, 1.0, Estimate(0.6, 0.5, 0.7, 900), 0.5,
        ...                       Estimate(value, low, high, 900), "better")
        >>> one = FixedModelsReport(None, None, 0.95, 900, Estimate(0.5, 0.49, 0.51, 900),
        ...                         (row("a/m", 0.08, 0.12, 0.16),))
        >>> [(r.model, round(needed, 4)) for r, needed in one.beaten_by()]  # its verdict's bar
        [('a/m', 0.04)]
        >>> from dataclasses import replace
        >>> four = replace(one, rows=(row("a/m", 0.08, 0.12, 0.16),  # b/m: better, 2.13 SE
        ...     row("b/m", 0.004, 0.05, 0.096), row("c/m", -0.1, 0.0, 0.1),
        ...     row("d/m", -0.2, -0.1, 0.0)))
        >>> [(r.model, round(needed, 4)) for r, needed in four.beaten_by()]  # 2.24 SE for 4
        [('a/m', 0.0457)]
        """
        if not 0.0 < family_error < 1.0:
            raise InvalidInputError(f"family_error must be in (0, 1), got {family_error!r}")
        # (MIN_ANSWERS answers are as many judged requests: a finite difference and interval)
        judged = [r for r in self.rows if r.chosen >= MIN_ANSWERS]
        if not judged:
            return []
        z = max(NormalDist().inv_cdf(1.0 - family_error / len(judged)), Z[self.level])
        out = []
        for r in judged:
            se = (r.difference.high - r.difference.value) / Z[self.level]
            if se > 0 and r.difference.value > z * se:  # (no spread: no evidence of any)
                out.append((r, z * se))
        return sorted(out, key=lambda pair: -pair[0].difference.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (an interval's open end, with fewer than two requests: null)."""
        return {"since": self.since, "until": self.until, "level": self.level,
                "min_chance": MIN_CHANCE, "min_answers": MIN_ANSWERS,
                "events": self.events, "router": _estimate(self.router),
                "rows": [{"model": r.model, "events": r.events, "chosen": r.chosen,
                          "support": r.support, "value": _estimate(r.value),
                          "router": _finite(r.router),
                          "difference": _estimate(r.difference),
                          "verdict": r.verdict} for r in self.rows]}

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_table(self) -> str:
        """A plain-text table, one model a line."""
        pct = f"{100 * self.level:.0f}%"
        lines = [f"router: mean reward {_fmt(self.router)} over {self.events:,} rewarded "
                 f"requests; always one model instead ({pct} intervals, inverse propensity, "
                 f"on the requests where the router gave it a {100 * MIN_CHANCE:.0f}% chance "
                 f"or more):",
                 f"{'model':<44} {'judged':>8} {'chosen':>7} {'support':>7} "
                 f"{'always it':>24} {'minus the router':>26}  verdict"]
        for r in self.rows:
            lines.append(f"{r.model:<44} {r.events:>8,} {r.chosen:>7,} "
                         f"{100 * r.support:>6.1f}% {_fmt(r.value):>24} "
                         f"{_fmt(r.difference, signed=True):>26}  {r.verdict}")
        return "\n".join(lines) + "\n"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _estimate(e: Estimate) -> dict[str, Any]:
    return {"value": _finite(e.value), "low": _finite(e.low), "high": _finite(e.high),
            "n": e.n}


def _fmt(e: Estimate, *, signed: bool = False) -> str:
    if not math.isfinite(e.value):
        return "-"
    spec = "+.4f" if signed else ".4f"
    if not (math.isfinite(e.low) and math.isfinite(e.high)):
        return f"{e.value:{spec}}"
    return f"{e.value:{spec}} [{e.low:{spec}}, {e.high:{spec}}]"


class _Moments:
    """Count, sum and sum of squares of a stream of values: its mean and interval."""

    __slots__ = ("n", "s", "ss")

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.s += x
        self.ss += x * x

    def estimate(self, level: float) -> Estimate:
        """What :func:`~bandit_router.eval.offpolicy.mean_estimate` gives of the values."""
        if self.n == 0:
            return Estimate(math.nan, -math.inf, math.inf, 0)
        mean = self.s / self.n
        var = max(self.ss - self.s * mean, 0.0) / (self.n - 1) if self.n > 1 else 0.0
        return normal_interval(mean, math.sqrt(var), self.n, level)


@dataclass(slots=True)
class _Model:
    """One model's running figures over the requests it is judged on."""

    eligible: int = 0
    answers: int = 0
    always: _Moments = field(default_factory=_Moments)
    router: _Moments = field(default_factory=_Moments)
    difference: _Moments = field(default_factory=_Moments)


def _logged(store: Store, lo: float | None, hi: float | None, arm: str | None
            ) -> Iterator[tuple[list[str], int, list[float], float]]:
    """Each rewarded request (no history, no default reward) in the period and arm: its
    eligible models, the chosen one's index, the logged distribution, the reward."""
    query = (select(EventRow.actions, EventRow.chosen, EventRow.pmf, RewardRow.reward)
             .join(RewardRow, RewardRow.event_id == EventRow.id)
             .where(EventRow.status != "history", RewardRow.is_default.is_(False)))
    if lo is not None:
        query = query.where(EventRow.created_at >= lo)
    if hi is not None:
        query = query.where(EventRow.created_at < hi)
    if arm is not None:
        query = query.where(EventRow.arm == arm)
    with store.engine.connect() as conn:
        for actions, chosen, pmf, reward in conn.execute(
                query.execution_options(yield_per=2000)):
            keys = [str(a.get("key")) for a in actions or () if isinstance(a, dict)]
            if len(keys) != len(actions or ()) or not 0 <= chosen < len(keys):
                continue  # (a row no router writes: nothing to weigh)
            yield keys, int(chosen), list(pmf or ()), float(reward)


def fixed_models(source: Router | Store, *, since: float | None = None,
                 until: float | None = None, level: float = 0.95,
                 arm: str | None = None) -> FixedModelsReport:
    """The router against always each model, on the rewarded requests logged in
    ``[since, until)`` (Unix seconds; ``None``: unbounded), with ``level`` intervals (0.90,
    0.95 or 0.99). ``source`` is a :class:`Router` or its store; ``arm`` keeps one
    experiment arm's requests (default: a Router's own arm; every arm for a store).
    Requests logged without the whole distribution count for the router's mean only.
    :class:`InvalidInputError` for a bad period or level."""
    if level not in Z:
        raise InvalidInputError(f"level must be one of {sorted(Z)}, not {level!r}")
    lo, hi = check_period(since, until)
    store = store_of(source)
    if arm is None and isinstance(source, Router):
        arm = source.arm
    overall = _Moments()
    models: dict[str, _Model] = {}
    for keys, chosen, pmf, reward in _logged(store, lo, hi, arm):
        overall.add(reward)
        aligned = len(pmf) == len(keys)  # (else no model's chance is known)
        for j, key in enumerate(keys):
            m = models.get(key)
            if m is None:
                m = models[key] = _Model()
            m.eligible += 1
            if not aligned or pmf[j] < MIN_CHANCE:
                continue
            # (the subset and the weight read the same distribution: a weight is <= 10)
            term = reward / max(pmf[j], _MIN_P) if j == chosen else 0.0
            m.always.add(term)
            m.router.add(reward)
            m.difference.add(term - reward)
            m.answers += j == chosen
    rows = []
    for key, m in models.items():
        difference = m.difference.estimate(level)
        verdict: Verdict = ("no evidence" if m.answers < MIN_ANSWERS else
                            "better" if difference.low > 0 else
                            "worse" if difference.high < 0 else "no evidence")
        rows.append(FixedModel(model=key, events=m.always.n, chosen=m.answers,
                               support=m.always.n / m.eligible,
                               value=m.always.estimate(level),
                               router=m.router.s / m.router.n if m.router.n else math.nan,
                               difference=difference, verdict=verdict))
    # those with enough answers for a verdict first, then by how far always-it is above the
    # router (each model is judged on its own requests: the values are not a leaderboard)
    rows.sort(key=lambda r: (r.chosen < MIN_ANSWERS, not math.isfinite(r.difference.value),
                             -r.difference.value if math.isfinite(r.difference.value)
                             else 0.0, r.model))
    return FixedModelsReport(since=lo, until=hi, level=level, events=overall.n,
                             router=overall.estimate(level), rows=tuple(rows))

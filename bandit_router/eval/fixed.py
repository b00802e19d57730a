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
weight); warm-start history and default rewards are left out. This detects; it does not
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
>>> row.events, row.verdict in ("better", "worse", "no evidence")
(40, True)
>>> router.close()
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import select

from ..core._errors import InvalidInputError
from ..core._results import Estimate
from ..core._store import EventRow, RewardRow, Store
from ..core._validation import check_time
from ..router._router import Router
from .offpolicy import Z, mean_estimate

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
    :data:`MIN_ANSWERS` answers first, each group by its estimate, highest first."""

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


def _logged(store: Store, lo: float | None, hi: float | None
            ) -> Iterator[tuple[list[str], int, float, list[float], float]]:
    """Each rewarded request (no history, no default reward) in the period: its eligible
    models, the chosen one's index and probability, the logged distribution, the reward."""
    query = (select(EventRow.actions, EventRow.chosen, EventRow.probability, EventRow.pmf,
                    RewardRow.reward)
             .join(RewardRow, RewardRow.event_id == EventRow.id)
             .where(EventRow.status != "history", RewardRow.is_default.is_(False)))
    if lo is not None:
        query = query.where(EventRow.created_at >= lo)
    if hi is not None:
        query = query.where(EventRow.created_at < hi)
    with store.engine.connect() as conn:
        for actions, chosen, probability, pmf, reward in conn.execute(
                query.execution_options(yield_per=2000)):
            keys = [str(a.get("key")) for a in actions or () if isinstance(a, dict)]
            if len(keys) != len(actions or ()) or not 0 <= chosen < len(keys):
                continue  # (a row no router writes: nothing to weigh)
            yield keys, int(chosen), float(probability), list(pmf or ()), float(reward)


def fixed_models(source: Router | Store, *, since: float | None = None,
                 until: float | None = None, level: float = 0.95) -> FixedModelsReport:
    """The router against always each model, on the rewarded requests logged in
    ``[since, until)`` (Unix seconds; ``None``: unbounded), with ``level`` intervals (0.90,
    0.95 or 0.99). ``source`` is a :class:`Router` or its store (every experiment arm on
    the database is included). :class:`InvalidInputError` for a bad period or level."""
    if level not in Z:
        raise InvalidInputError(f"level must be one of {sorted(Z)}, not {level!r}")
    lo, hi = check_time("since", since), check_time("until", until)
    if lo is not None and hi is not None and lo >= hi:
        raise InvalidInputError("the period is empty: since must be before until")
    store = source.store if isinstance(source, Router) else source
    if not isinstance(store, Store):
        raise InvalidInputError("source must be a Router or a Store")
    rewards: list[float] = []
    # per model, over the requests where it had a chance: the router's reward and
    # always-it's term; and the requests where it was eligible
    terms: dict[str, tuple[list[float], list[float]]] = {}
    eligible: dict[str, int] = {}
    chosen_counts: dict[str, int] = {}
    for keys, chosen, probability, pmf, reward in _logged(store, lo, hi):
        rewards.append(reward)
        aligned = len(pmf) == len(keys)  # (else only the chosen model's chance is known)
        for j, key in enumerate(keys):
            eligible[key] = eligible.get(key, 0) + 1
            chance = pmf[j] if aligned else probability if j == chosen else 0.0
            if chance < MIN_CHANCE:
                continue
            mine, always = terms.setdefault(key, ([], []))
            mine.append(reward)
            always.append(reward / max(probability, _MIN_P) if j == chosen else 0.0)
            if j == chosen:
                chosen_counts[key] = chosen_counts.get(key, 0) + 1
    rows = []
    for key, n in eligible.items():
        mine, always = terms.get(key, ([], []))
        value = mean_estimate(np.asarray(always), level=level)
        difference = mean_estimate(np.asarray(always) - np.asarray(mine), level=level)
        answers = chosen_counts.get(key, 0)
        verdict: Verdict = ("no evidence" if answers < MIN_ANSWERS else
                            "better" if difference.low > 0 else
                            "worse" if difference.high < 0 else "no evidence")
        rows.append(FixedModel(model=key, events=len(mine), chosen=answers,
                               support=len(mine) / n, value=value,
                               router=float(np.mean(mine)) if mine else math.nan,
                               difference=difference, verdict=verdict))
    # those with enough answers for a verdict first, then the highest estimate first
    rows.sort(key=lambda r: (r.chosen < MIN_ANSWERS, not math.isfinite(r.value.value),
                             -r.value.value if math.isfinite(r.value.value) else 0.0,
                             r.model))
    return FixedModelsReport(since=lo, until=hi, level=level, events=len(rewards),
                             router=mean_estimate(np.asarray(rewards), level=level),
                             rows=tuple(rows))

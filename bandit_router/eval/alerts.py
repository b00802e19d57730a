"""Health alerts read from the log: what a monitoring page shows beside budget alerts.

Three conditions, each the database's view (so every replica sharing it sees the same), with
the thresholds of the Prometheus rules under ``deploy/``:

- ``error_rate``: over ``error_window_s`` (10 minutes), the share of the rewards received
  that name an error (``rate_limit``, ``server_error``, ``timeout``, ...) is above
  ``error_rate`` (10%);
- ``quality_drop``: the mean quality of the rewards received in the last hour is under
  ``1 - quality_drop`` (90%) of the trailing week's;
- ``learning_lag``: the learner is more than ``learning_lag_limit`` (1,000) rewards behind the
  log (the caller says how far behind it is: only the process that learns knows).

Default rewards and labelled history are left out; a condition needs ``min_rewards`` (20)
rewards in its short window before it can fire, so a quiet hour raises nothing.

A fourth, :func:`fixed_model_alerts`, reads the trailing day's decisions instead (the
fixed-model report of :mod:`bandit_router.eval.fixed`): ``fixed_model``, always one model
would have earned more than the router, with evidence across all the models. It scans every
rewarded request of the day, so a caller that polls runs it on a schedule of its own (the
service: every 10 minutes, ``fixed_model_alert_every_s``).

>>> from bandit_router import Router
>>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
>>> r = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
>>> for i in range(30):
...     d = r.select(f"question {i}")
...     _ = r.reward(d.event_id, error="server_error") if i % 3 == 0 else r.reward(
...         d.event_id, quality=1.0)
>>> [a.kind for a in health_alerts(r, learning_lag=0)]
['error_rate']
>>> r.close()
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import case, func, select

from ..core._errors import InvalidInputError
from ..core._store import EventRow, RewardRow, Store
from ..router._router import Router
from .fixed import MIN_CHANCE, fixed_models
from .reports import store_of

__all__ = ["HealthAlert", "fixed_model_alerts", "health_alerts"]

HOUR_S, DAY_S, WEEK_S = 3600.0, 86400.0, 7 * 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthAlert:
    """A condition that holds now: its ``kind``, the figure measured (``value``) against its
    ``threshold``, how many rewards it was measured on, a sentence saying it, and the
    ``model`` it is about (``fixed_model`` only)."""

    kind: Literal["error_rate", "quality_drop", "learning_lag", "fixed_model"]
    value: float
    threshold: float
    rewards: int
    message: str
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "health_alert", **asdict(self)}


def _windows(store: Store, now: float, short_s: float) -> dict[str, tuple[int, int, float]]:
    """(rewards, of which errors, sum of quality) received in the last ``short_s`` seconds,
    hour and week before ``now``, in one query over the week (``received_at`` is indexed)."""
    since = {"short": now - short_s, "hour": now - HOUR_S, "week": now - WEEK_S}
    error = RewardRow.error.is_not(None)
    cols = []
    for start in since.values():
        inside = RewardRow.received_at >= start
        cols += [func.sum(case((inside, 1), else_=0)),
                 func.sum(case((inside & error, 1), else_=0)),
                 func.sum(case((inside, RewardRow.quality), else_=0.0))]
    query = (select(*cols).join(EventRow, RewardRow.event_id == EventRow.id)
             .where(RewardRow.received_at >= min(since.values()),
                    RewardRow.received_at < now + 1.0,
                    RewardRow.is_default.is_(False), EventRow.status != "history"))
    with store.engine.connect() as conn:
        row = conn.execute(query).one()
    return {name: (int(row[3 * k] or 0), int(row[3 * k + 1] or 0), float(row[3 * k + 2] or 0.0))
            for k, name in enumerate(since)}


def health_alerts(source: Router | Store, *, now: float | None = None,
                  learning_lag: int | None = None, error_rate: float = 0.10,
                  error_window_s: float = 600.0, quality_drop: float = 0.10,
                  learning_lag_limit: int = 1000,
                  min_rewards: int = 20) -> list[HealthAlert]:
    """The conditions of the module docstring that hold at ``now`` (default: the clock),
    in that order. ``learning_lag`` (rewards stored, not yet learned) is checked when given.
    """
    store = store_of(source)
    for name, value in (("error_rate", error_rate), ("quality_drop", quality_drop)):
        if not 0.0 < value < 1.0:
            raise InvalidInputError(f"{name} must be in (0, 1), got {value!r}")
    if not error_window_s > 0 or min_rewards < 1 or learning_lag_limit < 0:
        raise InvalidInputError("error_window_s must be > 0, min_rewards >= 1 and "
                                "learning_lag_limit >= 0")
    now = time.time() if now is None else now
    alerts = []
    windows = _windows(store, now, error_window_s)
    n, errors, _ = windows["short"]
    if n >= min_rewards and errors / n > error_rate:
        alerts.append(HealthAlert(
            kind="error_rate", value=errors / n, threshold=error_rate, rewards=n,
            message=f"{errors} of the {n} calls rewarded in the last "
                    f"{error_window_s / 60:g} minutes failed ({100 * errors / n:.0f}%; "
                    f"alert above {100 * error_rate:g}%)"))
    hour_n, _, hour_q = windows["hour"]
    week_n, _, week_q = windows["week"]
    if hour_n >= min_rewards and week_n > hour_n:
        hour_mean, week_mean = hour_q / hour_n, week_q / week_n
        if hour_mean < (1.0 - quality_drop) * week_mean:
            alerts.append(HealthAlert(
                kind="quality_drop", value=hour_mean, threshold=(1.0 - quality_drop) * week_mean,
                rewards=hour_n,
                message=f"mean quality over the last hour {hour_mean:.3f}, under "
                        f"{100 * (1 - quality_drop):g}% of the trailing week's {week_mean:.3f}"))
    if learning_lag is not None and learning_lag > learning_lag_limit:
        alerts.append(HealthAlert(
            kind="learning_lag", value=float(learning_lag), threshold=float(learning_lag_limit),
            rewards=learning_lag,
            message=f"the learner is {learning_lag} rewards behind the log (alert above "
                    f"{learning_lag_limit}); decisions use an older policy"))
    return alerts


def fixed_model_alerts(source: Router | Store, *, now: float | None = None,
                       window_s: float = DAY_S, family_error: float = 0.05,
                       arm: str | None = None) -> list[HealthAlert]:
    """``fixed_model`` alerts over the decisions of the ``window_s`` seconds before ``now``
    (default: the trailing day, by the clock): one per model that beats the router with
    evidence (:meth:`~bandit_router.eval.fixed.FixedModelsReport.beaten_by`: a one-sided
    test at ``family_error`` across the models given a verdict, in this one reading of the
    log; each model named is *better* in the fixed-model report too), the furthest above
    first. ``value`` is always-it less the router, ``threshold`` the difference it had to
    clear, ``rewards`` the requests it was judged on. One experiment arm: a Router's own
    unless ``arm`` is given (a store: every arm unless given).

    >>> from bandit_router import Router
    >>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
    >>> r = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
    >>> fixed_model_alerts(r)  # nothing logged: nothing to say
    []
    >>> r.close()
    """
    if not window_s > 0:
        raise InvalidInputError(f"window_s must be > 0, got {window_s!r}")
    now = time.time() if now is None else now
    report = fixed_models(source, since=max(0.0, now - window_s), until=now + 1.0, arm=arm)
    hours = window_s / HOUR_S
    return [HealthAlert(
        kind="fixed_model", value=row.difference.value, threshold=needed, rewards=row.events,
        model=row.model,
        message=f"always {row.model} would have earned {row.difference.value:+.4f} reward a "
                f"request more than the router over the last {hours:g} hours (on the "
                f"{row.events:,} requests where the router gave it a "
                f"{100 * MIN_CHANCE:.0f}% chance or more, {row.chosen:,} of them its answers; the "
                f"bar for evidence, every model judged counted, was +{needed:.4f}); see the "
                f"fixed-model report")
        for row, needed in report.beaten_by(family_error=family_error)]

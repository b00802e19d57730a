"""Experiments the service runs: definitions in the database, one router per arm.

An arm's stored definition is the JSON the admin posted: policy settings (``exploration``,
``epsilon``, ``gamma_scale``, ``optimism``, ``baseline_strength``, ``cost_weight``), which
``make_router`` turns into the arm's router, and optionally a model restriction (``models``
or ``fixed_model``), which wraps that router in a :class:`~bandit_router.eval.experiments.Arm`.
Both are rebuilt from the stored definition on start-up, so a restart keeps every
experiment, its arms and its promotion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bandit_router import (
    BanditRouterError,
    InvalidInputError,
    Router,
    UnknownModelError,
)
from bandit_router.core._sql import open_engine
from bandit_router.eval.experiments import Arm, Experiment

from .tables import ExperimentRow, migrate_service

__all__ = ["RESTRICTIONS", "ExperimentRegistry", "UnknownExperimentError"]

log = logging.getLogger("feedback_api")

#: Arm fields that restrict the arm's models rather than configure its router.
RESTRICTIONS = ("models", "fixed_model")


class UnknownExperimentError(UnknownModelError):
    """No experiment with this name (answered 404, like any missing resource)."""


class _UnknownArmModel(UnknownModelError, InvalidInputError):
    """An arm naming a model the catalog lacks: still an UnknownModelError for typed
    clients, answered 422 (a bad definition) rather than 404 (a missing resource)."""


def _close(routers: list[Router]) -> None:
    for router in routers:
        try:
            router.close()
        except Exception:  # closing is best effort: the build already failed
            log.exception("closing an arm's router failed")


def _apply_state(experiment: Experiment, row: ExperimentRow) -> None:
    """Stop or promote ``experiment`` as its stored row says."""
    if row.stopped:
        experiment.stop()
    elif row.promoted:
        experiment.promote(row.promoted)


class ExperimentRegistry:
    """Loads, creates and changes experiments; ``make_router(tag, settings)`` builds an
    arm's router from its policy settings (the definition without ``models`` and
    ``fixed_model``)."""

    def __init__(self, database_url: str,
                 make_router: Callable[[str, dict[str, Any]], Router], *,
                 timeout_s: float = 10.0) -> None:
        # InvalidInputError unless SQLite or PostgreSQL; a lock or a connection waited for
        # up to timeout_s, as the router's store waits
        self.engine = open_engine(database_url, timeout_s=timeout_s)
        migrate_service(self.engine)  # the service's tables, by their migrations
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._make = make_router
        self._lock = threading.Lock()
        self._experiments: dict[str, tuple[Experiment, ExperimentRow]] = {}
        self._unloadable: set[str] = set()
        self.reload()

    def reload(self) -> int:
        """Load the experiments stored since (another replica created them) and follow the
        promotions and stops stored since; returns how many experiments were added."""
        with self._sessions() as s:
            rows = list(s.scalars(select(ExperimentRow)))
        added = 0
        for row in rows:
            with self._lock:
                known = self._experiments.get(row.name)
            if known is None:
                if row.name in self._unloadable:
                    continue
                try:
                    experiment = self._build(row)
                except BanditRouterError as exc:  # e.g. a model since dropped from the catalog
                    log.error("experiment %r is not loaded: %s", row.name, exc)
                    self._unloadable.add(row.name)
                    continue
                with self._lock:
                    if row.name in self._experiments:  # created here meanwhile
                        _close(list(experiment.arms.values()))
                        continue
                    self._experiments[row.name] = (experiment, row)
                added += 1
            elif (known[1].promoted, known[1].stopped) != (row.promoted, row.stopped):
                experiment, mine = known
                _apply_state(experiment, row)
                mine.promoted, mine.stopped = row.promoted, row.stopped
        return added

    def _build(self, row: ExperimentRow) -> Experiment:
        built: list[Router] = []
        try:
            arms = {}
            for arm, spec in row.arms.items():
                settings = {k: v for k, v in spec.items() if k not in RESTRICTIONS}
                router = self._make(f"{row.name}:{arm}", settings)
                built.append(router)
                models = spec.get("models")
                arms[arm] = Arm(router=router,
                                models=tuple(models) if models is not None else None,
                                fixed_model=spec.get("fixed_model"))
            exp = Experiment(row.name, arms, shares=row.shares)
        except UnknownModelError as exc:
            _close(built)
            raise _UnknownArmModel(str(exc)) from None
        except BaseException:
            _close(built)
            raise
        _apply_state(exp, row)
        return exp

    def create(self, name: str, arms: dict[str, dict[str, Any]],
               shares: dict[str, float] | None) -> Experiment:
        if name == "auto":  # the gateway's bandit-router/<name> would be the router itself
            raise InvalidInputError("the experiment name 'auto' is reserved "
                                    "(bandit-router/auto is the router)")
        row = ExperimentRow(name=name, arms=arms, shares=shares or {a: 1.0 for a in arms},
                             promoted=None, stopped=False, created_at=time.time())
        experiment = self._build(row)  # validates arms and shares before anything is stored
        with self._lock:
            try:
                with self._sessions() as s, s.begin():
                    s.add(row)
            except IntegrityError:
                _close(list(experiment.arms.values()))
                raise InvalidInputError(f"experiment {name!r} already exists") from None
            self._experiments[name] = (experiment, row)
        return experiment

    def get(self, name: str) -> tuple[Experiment, bool]:
        """The experiment and whether it is stopped."""
        with self._lock:
            found = self._experiments.get(name)
        if found is None:
            raise UnknownExperimentError(f"no experiment {name!r}")
        return found[0], found[1].stopped

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._experiments)

    def promote(self, name: str, arm: str, *, stop: bool = False) -> Experiment:
        """Send all new traffic to ``arm``; with ``stop``, end the experiment (``arm`` is
        then the control)."""
        experiment, _ = self.get(name)
        if stop:
            experiment.stop()
        else:
            experiment.promote(arm)
        with self._lock, self._sessions() as s, s.begin():
            s.execute(update(ExperimentRow).where(ExperimentRow.name == name)
                      .values(promoted=experiment.promoted, stopped=stop))
            self._experiments[name][1].promoted = experiment.promoted
            self._experiments[name][1].stopped = stop
        return experiment

    def routers(self) -> list[Router]:
        with self._lock:
            return [r for exp, _ in self._experiments.values() for r in exp.arms.values()]

    def close(self) -> None:
        for router in self.routers():
            router.close()
        self.engine.dispose()

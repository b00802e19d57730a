"""Experiments the service runs: definitions in the database, one router per arm."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Double, String, create_engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from bandit_router import InvalidInputError, Router, UnknownModelError
from bandit_router.experiments import Experiment

__all__ = ["ExperimentRegistry", "UnknownExperimentError"]


class UnknownExperimentError(UnknownModelError):
    """No experiment with this name (answered 404, like any missing resource)."""


class _Base(DeclarativeBase):
    pass


class _ExperimentRow(_Base):
    __tablename__ = "br_experiments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    arms: Mapped[dict[str, Any]] = mapped_column(JSON)
    shares: Mapped[dict[str, float]] = mapped_column(JSON)
    promoted: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stopped: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[float] = mapped_column(Double)


class ExperimentRegistry:
    """Loads, creates and changes experiments; ``make_router(tag, spec)`` builds an arm."""

    def __init__(self, database_url: str,
                 make_router: Callable[[str, dict[str, Any]], Router]) -> None:
        self.engine = create_engine(database_url)
        _Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._make = make_router
        self._lock = threading.Lock()
        self._experiments: dict[str, tuple[Experiment, _ExperimentRow]] = {}
        with self._sessions() as s:
            for row in s.scalars(select(_ExperimentRow)):
                self._experiments[row.name] = (self._build(row), row)

    def _build(self, row: _ExperimentRow) -> Experiment:
        arms = {arm: self._make(f"{row.name}:{arm}", spec) for arm, spec in row.arms.items()}
        exp = Experiment(row.name, arms, shares=row.shares)
        if row.promoted:
            exp.promote(row.promoted)
        return exp

    def create(self, name: str, arms: dict[str, dict[str, Any]],
               shares: dict[str, float] | None) -> Experiment:
        row = _ExperimentRow(name=name, arms=arms, shares=shares or {a: 1.0 for a in arms},
                             promoted=None, stopped=False, created_at=time.time())
        experiment = self._build(row)  # validates arms and shares before anything is stored
        with self._lock:
            try:
                with self._sessions() as s, s.begin():
                    s.add(row)
            except IntegrityError:
                for router in experiment.arms.values():
                    router.close()
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
        experiment, _ = self.get(name)
        experiment.promote(arm)
        with self._lock, self._sessions() as s, s.begin():
            s.execute(update(_ExperimentRow).where(_ExperimentRow.name == name)
                      .values(promoted=arm, stopped=stop))
            self._experiments[name][1].promoted = arm
            self._experiments[name][1].stopped = stop
        return experiment

    def routers(self) -> list[Router]:
        with self._lock:
            return [r for exp, _ in self._experiments.values() for r in exp.arms.values()]

    def close(self) -> None:
        for router in self.routers():
            router.close()
        self.engine.dispose()

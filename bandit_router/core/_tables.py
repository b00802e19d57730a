"""The router's tables (SQLAlchemy ORM rows) and how the store turns rows into values.

Every table of the library's schema is declared here, on :class:`_Base`; the migrations in
``bandit_router/core/migrations`` create and change them (see ``_schema``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, configure_mappers, mapped_column

__all__ = ["AlertRow", "BudgetRow", "CheckpointRow", "ClusterRow", "CooldownRow", "EventConflict",
           "EventRow", "LearnItem", "MemoryPageRow", "ObservationRow", "PriceRow",
           "RewardConflict", "RewardRow", "SpendRow", "json_dumps", "new_row"]


class _Base(DeclarativeBase):
    pass


class EventRow(_Base):
    """One decision, with everything needed to learn from it again."""

    __tablename__ = "br_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[float] = mapped_column(Double, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    task_hash: Mapped[str] = mapped_column(String(64), index=True)
    task_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    embedder: Mapped[str] = mapped_column(String(200))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    chosen: Mapped[int] = mapped_column(Integer)
    model_key: Mapped[str] = mapped_column(String(300), index=True)
    probability: Mapped[float] = mapped_column(Float)
    pmf: Mapped[list[float]] = mapped_column(JSON)
    cost_weight: Mapped[float] = mapped_column(Float)
    latency_weight: Mapped[float] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(Integer)
    reference_key: Mapped[str] = mapped_column(String(300))
    reference_cost_usd: Mapped[float] = mapped_column(Float)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_version: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    arm: Mapped[str] = mapped_column(String(64), index=True, default="")
    # added in schema 2 (budgets); NULL on events logged before
    tenant: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    reserved_usd: Mapped[float | None] = mapped_column(Double, nullable=True)
    deployment: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RewardRow(_Base):
    """The reward of one event; ``seq`` is the order in which routers learn."""

    __tablename__ = "br_rewards"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("br_events.id"), unique=True)
    received_at: Mapped[float] = mapped_column(Double, index=True)
    quality: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reward: Mapped[float] = mapped_column(Float)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    #: stored but not learned: its tenant was past ``learn_rate_per_tenant_per_min``
    #: (revision 0004)
    held_back: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CooldownRow(_Base):
    """A deployment cooled down by one process, so that every process sharing the database
    stops calling it too (revision 0005). Append-only; old rows are pruned."""

    __tablename__ = "br_cooldowns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(String(200), index=True)
    cooldown_until: Mapped[float] = mapped_column(Double, index=True)
    created_at: Mapped[float] = mapped_column(Double)


class ObservationRow(_Base):
    """What the call a decision led to cost and took, recorded when the call ended (by the
    gateway that made it), before its quality is known; a reward that does not give them
    uses these. Revision 0003."""

    __tablename__ = "br_observations"

    event_id: Mapped[str] = mapped_column(ForeignKey("br_events.id"), primary_key=True)
    observed_at: Mapped[float] = mapped_column(Double)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    ttft_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CheckpointRow(_Base):
    __tablename__ = "br_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Double)
    arm: Mapped[str] = mapped_column(String(64), default="")
    reward_seq: Mapped[int] = mapped_column(Integer)
    learned: Mapped[int] = mapped_column(Integer)
    config_hash: Mapped[str] = mapped_column(String(64))
    #: what it was written with (format 2; NULL on checkpoints of format 1, which have only
    #: the hash); revision 0002
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    policy: Mapped[bytes] = mapped_column(LargeBinary)
    memory: Mapped[bytes] = mapped_column(LargeBinary)


class MemoryPageRow(_Base):
    """A compact memory's 8-bit codes of ``rows`` consecutive remembered tasks (the rewards
    ``first_seq`` to ``last_seq``), sealed once and never changed, so that a restart files
    them instead of reading every task's embedding back from the event log (revision
    0007). A cache: a page that is missing or damaged is read from the log instead.
    ``code_key`` names the 8-bit range the codes were made with (``Memory.code_key``)."""

    __tablename__ = "br_memory_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arm: Mapped[str] = mapped_column(String(64), index=True)
    code_key: Mapped[str] = mapped_column(String(64))
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Double)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ClusterRow(_Base):
    """Task-cluster codebooks (``TaskClusters``), written once per arm and settings: the
    first process to fit them wins, and every other uses its codebooks."""

    __tablename__ = "br_clusters"

    arm: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Double)
    tasks: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    codebooks: Mapped[bytes] = mapped_column(LargeBinary)


class PriceRow(_Base):
    """A price change, kept as history; the latest per model wins on start-up."""

    __tablename__ = "br_prices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    updated_at: Mapped[float] = mapped_column(Double)
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    input_price_per_1m: Mapped[float | None] = mapped_column(Float, nullable=True)
    output_price_per_1m: Mapped[float | None] = mapped_column(Float, nullable=True)


# -- budgets (their logic is in ``_budgets``) -----------------------------------------------
class BudgetRow(_Base):
    __tablename__ = "br_budgets"

    id: Mapped[str] = mapped_column(String(320), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Double)


class SpendRow(_Base):
    """Spend of one scope in one UTC hour: reservations of pending decisions and costs
    reported by rewards."""

    __tablename__ = "br_spend"

    scope: Mapped[str] = mapped_column(String(320), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # floor(unix time / 3600)
    reserved_usd: Mapped[float] = mapped_column(Double, default=0.0)
    spent_usd: Mapped[float] = mapped_column(Double, default=0.0)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class AlertRow(_Base):
    __tablename__ = "br_budget_alerts"
    __table_args__ = (UniqueConstraint("budget_id", "window_start", "threshold"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    budget_id: Mapped[str] = mapped_column(String(320))
    window_start: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventConflict(Exception):
    """An event with this id is already logged."""


class RewardConflict(Exception):
    """The event already had a reward when this one was written."""


@dataclass(frozen=True, slots=True)
class LearnItem:
    """A reward joined with its event: one step of the learning log."""

    reward: RewardRow
    event: EventRow


_Row = TypeVar("_Row", bound=_Base)


def new_row(cls: type[_Row], **values: Any) -> _Row:
    """``cls(**values)`` without the ORM's per-attribute bookkeeping, which costs tens of
    microseconds for an event: for the rows the store writes itself (:meth:`Store.add_event`,
    :meth:`Store.add_reward`). Attributes read and set as on any row."""
    mapper = inspect(cls)
    if not mapper.configured:  # the attributes are instrumented when the mappers are
        configure_mappers()
    row = cast(_Row, mapper.class_manager.new_instance())
    row.__dict__.update(values)
    return row


def _column_defaults(table: Table) -> list[tuple[str, Any]]:
    """``(column, default)`` of each column; the default is a value, a zero-argument
    callable, or ``None``."""
    out: list[tuple[str, Any]] = []
    for column in table.columns:
        default: Any = None
        if column.default is not None:
            arg = getattr(column.default, "arg", None)
            if getattr(column.default, "is_scalar", False):
                default = arg
            elif callable(arg):
                default = _called(arg)
        out.append((column.key, default))
    return out


def _called(arg: Callable[[Any], Any]) -> Callable[[], Any]:
    return lambda: arg(None)  # SQLAlchemy wraps a callable default to take a context


def _row_values(row: _Base, columns: list[tuple[str, Any]]) -> dict[str, Any]:
    """The column values of an ORM row for a Core insert. A column the row leaves unset
    gets its default, on the row too, as the ORM's flush would; autoincrement keys stay
    out."""
    state = row.__dict__
    values: dict[str, Any] = {}
    for key, default in columns:
        if key in state:
            values[key] = state[key]
        elif default is not None:
            value = default() if callable(default) else default
            setattr(row, key, value)
            values[key] = value
    return values


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):  # numpy scalars, as the json module takes float64
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_dumps(value: Any) -> str:
    """The JSON columns' serializer: orjson, an order of magnitude faster than ``json`` on the
    event's action records (each decision writes one). Text, for every driver. Unlike
    ``json`` it refuses integers beyond 64 bits (``orjson.JSONEncodeError``, a
    ``TypeError``)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()

"""The service's tables (API keys, experiments) on one MetaData, and their migrations
(``feedback_api/migrations``, version table ``br_service_alembic_version``), run by the same
machinery as the library's (:mod:`bandit_router.core._schema`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Double, Integer, MetaData, String
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bandit_router.core._schema import Migrations, migrate

__all__ = ["SERVICE", "ExperimentRow", "KeyRow", "migrate_service"]


class _Base(DeclarativeBase):
    pass


class KeyRow(_Base):
    __tablename__ = "br_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    #: the first key of its rotation chain (None: this key's own id)
    tenant: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ExperimentRow(_Base):
    __tablename__ = "br_experiments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    arms: Mapped[dict[str, Any]] = mapped_column(JSON)
    shares: Mapped[dict[str, float]] = mapped_column(JSON)
    promoted: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stopped: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[float] = mapped_column(Double)


def service_metadata() -> MetaData:
    return _Base.metadata


#: the service's tables
SERVICE = Migrations(location=Path(__file__).parent / "migrations",
                     version_table="br_service_alembic_version", baseline="0001",
                     metadata=service_metadata)


def migrate_service(engine: Engine) -> str:
    """Bring the service's tables to the newest schema (as
    :func:`bandit_router.core._schema.migrate` does the library's)."""
    return migrate(engine, SERVICE)

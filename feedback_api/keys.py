"""API keys: created and revoked with the CLI, stored as SHA-256 hashes.

Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed);
only the hash and an 8-character prefix for display are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import sessionmaker

from .tables import KeyRow, migrate_service

__all__ = ["ApiKey", "KeyStore", "Scope"]

Scope = Literal["client", "admin"]
SCOPES: tuple[str, ...] = ("client", "admin")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: float
    revoked_at: float | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _public(row: KeyRow) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, scope=row.scope, prefix=row.prefix,
                  created_at=row.created_at, revoked_at=row.revoked_at)


class KeyStore:
    """API keys in the router's database (table ``br_api_keys``)."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        migrate_service(self.engine)  # the service's tables, by their migrations
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create(self, *, name: str, scope: str) -> tuple[ApiKey, str]:
        """A new key: its record and the secret, shown once."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        secret = "br-" + secrets.token_urlsafe(32)
        row = KeyRow(name=name, scope=scope, prefix=secret[:8], key_hash=_hash(secret),
                      created_at=time.time(), revoked_at=None)
        with self._sessions() as s, s.begin():
            s.add(row)
        return _public(row), secret

    def revoke(self, key_id: int) -> bool:
        with self._sessions() as s, s.begin():
            result = s.execute(update(KeyRow).where(KeyRow.id == key_id,
                                                     KeyRow.revoked_at.is_(None))
                               .values(revoked_at=time.time()).returning(KeyRow.id))
            return result.first() is not None

    def list(self) -> list[ApiKey]:
        with self._sessions() as s:
            return [_public(r) for r in s.scalars(select(KeyRow).order_by(KeyRow.id))]

    def verify(self, secret: str) -> ApiKey | None:
        """The live key with this secret, or None."""
        if not secret or len(secret) > 200:
            return None
        with self._sessions() as s:
            row = s.scalars(select(KeyRow).where(KeyRow.key_hash == _hash(secret),
                                                  KeyRow.revoked_at.is_(None))).first()
            return _public(row) if row is not None else None

    def close(self) -> None:
        self.engine.dispose()

"""API keys: created and revoked with the CLI, stored as SHA-256 hashes.

Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed);
only the hash and an 8-character prefix for display are stored.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from bandit_router.core._sql import open_engine

from .tables import KeyRow, migrate_service

__all__ = ["ApiKey", "KeyStore", "Scope"]

Scope = Literal["client", "admin"]
SCOPES: tuple[str, ...] = ("client", "admin")
_CACHED_KEYS = 10_000  # most verified keys a process keeps at hand


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record. ``tenant`` owns what the key does (its events, their names, its
    spend): the id of the first key of its rotation chain, so a rotated key goes on
    rewarding the events its predecessor selected."""

    id: int
    name: str
    scope: str
    prefix: str
    created_at: float
    revoked_at: float | None
    expires_at: float | None = None
    tenant: int = 0

    @property
    def tag(self) -> str:
        """``key-<tenant>``: the key's chain by name (``key-0`` with authentication off), as
        its rate limit and experiments' units count it."""
        return f"key-{self.tenant}"

    @property
    def tenant_tag(self) -> str | None:
        """Whose budgets apply and whose spend it is, as the library's ``tenant``
        (:attr:`tag`); None with authentication off (tenant 0)."""
        return self.tag if self.tenant else None

    def state(self, now: float) -> str:
        """``live``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at is not None and self.expires_at <= now else "live"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _public(row: KeyRow) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, scope=row.scope, prefix=row.prefix,
                  created_at=row.created_at, revoked_at=row.revoked_at,
                  expires_at=row.expires_at, tenant=row.tenant or row.id)


class KeyStore:
    """API keys in the router's database (table ``br_api_keys``).

    A key found live is trusted for ``cache_s`` seconds without reading the database again
    (:meth:`cached`); its expiry is still checked on every call. Revoking or rotating a key
    through this store forgets what it trusted at once; through another process (another
    replica, the CLI) the change reaches this one within ``cache_s``. ``cache_s=0`` reads
    the database on every call."""

    def __init__(self, database_url: str, *, cache_s: float = 0.0,
                 timeout_s: float = 10.0) -> None:
        if not (math.isfinite(cache_s) and cache_s >= 0):
            raise ValueError("cache_s must be a number of seconds >= 0")
        # InvalidInputError unless SQLite or PostgreSQL; a lock or a connection waited for
        # up to timeout_s, as the router's store waits
        self.engine = open_engine(database_url, timeout_s=timeout_s)
        migrate_service(self.engine)  # the service's tables, by their migrations
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.cache_s = cache_s
        self._trusted: dict[str, tuple[ApiKey, float]] = {}  # hash -> key, monotonic until
        self._trusted_lock = threading.Lock()
        self._forgotten = 0  # times this store forgot what it trusted (see verify)

    def create(self, *, name: str, scope: str, expires_in_s: float | None = None,
               _tenant: int | None = None) -> tuple[ApiKey, str]:
        """A new key: its record and the secret, shown once. ``expires_in_s``: it stops
        working that long from now (None: when revoked)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        if expires_in_s is not None and not (math.isfinite(expires_in_s) and expires_in_s > 0):
            raise ValueError("expires_in_s must be a positive number of seconds")
        secret = "br-" + secrets.token_urlsafe(32)
        now = time.time()
        row = KeyRow(name=name, scope=scope, prefix=secret[:8], key_hash=_hash(secret),
                     created_at=now, revoked_at=None, tenant=_tenant,
                     expires_at=None if expires_in_s is None else now + expires_in_s)
        with self._sessions() as s, s.begin():
            s.add(row)
        return _public(row), secret

    def rotate(self, key_id: int, *, grace_s: float = 86_400.0,
               expires_in_s: float | None = None) -> tuple[ApiKey, str]:
        """A successor of a live key: same name, scope and tenant (it reads and rewards the
        events the old key selected), a new secret. The old key keeps working for
        ``grace_s`` (0: stops now), time to deploy the new secret. KeyError unless
        ``key_id`` is a live key."""
        if not (math.isfinite(grace_s) and grace_s >= 0):
            raise ValueError("grace_s must be a number of seconds >= 0")
        now = time.time()
        with self._sessions() as s, s.begin():
            old = s.get(KeyRow, key_id, with_for_update=True)
            if old is None or _public(old).state(now) != "live":
                raise KeyError(f"no live key with id {key_id}")
            old.expires_at = min(old.expires_at or math.inf, now + grace_s)
            tenant = old.tenant or old.id
            name, scope = old.name, old.scope
        self._forget()
        return self.create(name=name, scope=scope, expires_in_s=expires_in_s, _tenant=tenant)

    def revoke(self, key_id: int) -> bool:
        with self._sessions() as s, s.begin():
            result = s.execute(update(KeyRow).where(KeyRow.id == key_id,
                                                     KeyRow.revoked_at.is_(None))
                               .values(revoked_at=time.time()).returning(KeyRow.id))
            revoked = result.first() is not None
        self._forget()
        return revoked

    def _forget(self) -> None:
        with self._trusted_lock:
            self._trusted.clear()
            self._forgotten += 1

    def list(self) -> list[ApiKey]:
        with self._sessions() as s:
            return [_public(r) for r in s.scalars(select(KeyRow).order_by(KeyRow.id))]

    def verify(self, secret: str) -> ApiKey | None:
        """The live key with this secret (not revoked, not expired), or None: read from
        the database (and trusted for ``cache_s`` after)."""
        if not secret or len(secret) > 200:
            return None
        digest = _hash(secret)
        generation = self._forgotten  # a revocation here after this read voids what it read
        with self._sessions() as s:
            row = s.scalars(select(KeyRow).where(KeyRow.key_hash == digest,
                                                  KeyRow.revoked_at.is_(None))).first()
        key = _public(row) if row is not None else None
        if key is None or key.state(time.time()) != "live":
            return None
        if self.cache_s > 0:
            with self._trusted_lock:
                if self._forgotten != generation:  # revoked or rotated meanwhile: not kept
                    return key
                if len(self._trusted) >= _CACHED_KEYS:
                    self._trusted.clear()
                self._trusted[digest] = (key, time.monotonic() + self.cache_s)
        return key

    def cached(self, secret: str) -> ApiKey | None:
        """The live key with this secret if :meth:`verify` found it within the last
        ``cache_s`` seconds (and it has not expired since); else None: not at hand, so
        :meth:`verify` must read the database (unknown secrets are never kept)."""
        if not secret or len(secret) > 200:
            return None
        hit = self._trusted.get(_hash(secret))
        if hit is None or time.monotonic() >= hit[1]:
            return None
        return hit[0] if hit[0].state(time.time()) == "live" else None

    def close(self) -> None:
        self.engine.dispose()

"""Which process learns: one lock per database, held for as long as the process lives.

Several processes may serve one database, but the log should be learned once: one process
holds the learner lock, learns the log and publishes checkpoints; the others follow the newest
checkpoint (``Router(follow=True)``). A standby tries the lock again and again, and takes over
when the holder dies: the lock dies with it.

- PostgreSQL: a session-level advisory lock on a connection of its own. The server releases
  it when that connection ends (a killed process, a lost network); :meth:`LearnerLock.held`
  asks the server, so a holder that lost its connection learns that it no longer leads.
- SQLite: an exclusive ``flock`` on ``<database file>.learner-lock`` beside the file (one
  machine, as SQLite is). The kernel releases it when the process dies.
- An in-memory database has one process: the lock is always held.

>>> lock = LearnerLock("sqlite://")
>>> lock.acquire(), lock.held()
(True, True)
>>> lock.release()
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ._sql import database_url as checked_url

__all__ = ["LearnerLock"]

log = logging.getLogger("bandit_router")

#: pg_try_advisory_lock key of the learner ("bandit-l"; the reward lock is "bandit-r")
_LEARNER_LOCK = 0x62616E646C


class LearnerLock:
    """The right to learn the log of ``database_url`` and publish models; see the module."""

    def __init__(self, database_url: str, *, timeout_s: float = 10.0) -> None:
        url = checked_url(database_url)  # InvalidInputError unless SQLite or PostgreSQL
        self._kind = url.get_backend_name()
        self._conn: Any = None
        self._engine: Any = None
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        if self._kind == "sqlite" and url.database and url.database != ":memory:" \
                and "mode=memory" not in database_url:
            self._path = Path(url.database).with_name(Path(url.database).name + ".learner-lock")
        elif self._kind == "postgresql":
            # a dead peer must end the session (and free the lock) in seconds, not after
            # the operating system's two hours of TCP keepalive; no statement may hang
            self._engine = create_engine(
                database_url, poolclass=NullPool,
                connect_args={"connect_timeout": max(1, round(timeout_s)),
                              "keepalives": 1, "keepalives_idle": 10,
                              "keepalives_interval": 5, "keepalives_count": 3,
                              "tcp_user_timeout": 30_000,
                              # the server's side of the same session: it frees the lock
                              "options": f"-c statement_timeout={round(timeout_s * 1000)} "
                                         "-c tcp_keepalives_idle=10 "
                                         "-c tcp_keepalives_interval=5 "
                                         "-c tcp_keepalives_count=3"})
        self._held = False

    def acquire(self) -> bool:
        """Take the lock if it is free; True when this process holds it (now or already).
        Never waits: a standby calls it again on its own clock."""
        if self._held and self.held():
            return True
        if self._kind == "postgresql":
            try:
                if self._conn is None:
                    self._conn = self._engine.connect()
                got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                              {"k": _LEARNER_LOCK}).scalar())
                self._conn.commit()
            except Exception as exc:  # an unreachable server: not leading, try again later
                log.warning("learner lock: database unreachable (%s)", type(exc).__name__)
                self._drop_connection()
                return False
            self._held = got
        elif self._path is not None:
            import fcntl

            if self._file is None:
                try:
                    self._file = open(self._path, "ab")  # noqa: SIM115 - held while leading
                except OSError as exc:  # not leading; say why, try again on the next pass
                    log.warning("learner lock file %s: %s", self._path, exc)
                    return False
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._held = False
            else:
                self._held = True
                self._file.truncate(0)
                self._file.write(str(os.getpid()).encode())
                self._file.flush()
        else:
            self._held = True
        return self._held

    def held(self) -> bool:
        """Whether this process still holds the lock (PostgreSQL: the server is asked)."""
        if not self._held:
            return False
        if self._kind == "postgresql":
            try:
                found = self._conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
                    "AND ((classid::bigint << 32) | objid::bigint) = :k"),
                    {"k": _LEARNER_LOCK}).scalar()
                self._conn.commit()
            except Exception as exc:
                log.warning("learner lock lost with its connection (%s)", type(exc).__name__)
                self._drop_connection()
                return False
            self._held = bool(found)
        elif self._file is not None and self._path is not None:
            # the lock is on the file this process opened: if that file was removed or
            # replaced, another process can lock the new one, so this one no longer leads
            try:
                same = os.stat(self._path).st_ino == os.fstat(self._file.fileno()).st_ino
            except OSError:
                same = False
            if not same:
                log.warning("learner lock file %s was removed or replaced", self._path)
                self._file.close()
                self._file = None
                self._held = False
        return self._held

    def release(self) -> None:
        """Give the lock up (a process that ends releases it anyway)."""
        if self._kind == "postgresql":
            if self._conn is not None and self._held:
                with contextlib.suppress(Exception):  # gone: the lock went with it
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": _LEARNER_LOCK})
                    self._conn.commit()
            self._drop_connection()
            self._engine.dispose()
        elif self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
        self._held = False

    def _drop_connection(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self._conn.close()
            self._conn = None

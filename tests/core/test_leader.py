"""The learner lock: one holder per database, released when the holder dies or its
connection does, on SQLite (a file lock) and PostgreSQL (an advisory lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bandit_router import InvalidInputError, LearnerLock
from bandit_router.core._leader import _LEARNER_LOCK


@pytest.fixture
def url(db_url: str) -> str:
    return db_url


def test_one_holder_at_a_time_and_the_next_takes_over(url: str) -> None:
    first, second = LearnerLock(url), LearnerLock(url)
    try:
        assert first.acquire() and first.held()
        assert not second.acquire() and not second.held()
        assert first.acquire()  # asking again while holding it keeps it
        first.release()
        assert not first.held()
        assert second.acquire() and second.held()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


def test_a_killed_holder_releases_the_lock(url: str) -> None:
    code = ("import sys, time\nfrom bandit_router import LearnerLock\n"
            "lock = LearnerLock(sys.argv[1])\nassert lock.acquire()\n"
            "print('held', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                            text=True)
    standby = LearnerLock(url)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert not standby.acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10  # PostgreSQL ends the dead client's session
        while not standby.acquire() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert standby.held()
    finally:
        proc.kill()
        standby.release()


def test_a_holder_whose_connection_is_cut_no_longer_leads(pg_url: str) -> None:
    lock, standby = LearnerLock(pg_url), LearnerLock(pg_url)
    admin = create_engine(pg_url)
    try:
        assert lock.acquire()
        with admin.begin() as conn:  # the server ends the holder's session (this
            # database's learner lock only: tests in other databases run beside this one)
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :k "
                "AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"), {"k": _LEARNER_LOCK})
        assert not lock.held()  # it asks the server, and learns it no longer leads
        assert standby.acquire()
        assert not lock.acquire()  # it reconnects, and finds the lock taken
    finally:
        lock.release()
        standby.release()
        admin.dispose()


def test_an_in_memory_database_has_one_process_and_other_engines_are_refused() -> None:
    lock = LearnerLock("sqlite://")
    assert lock.acquire() and lock.held()
    lock.release()
    with pytest.raises(InvalidInputError, match="mysql"):  # the store's rule, typed
        LearnerLock("mysql://u@localhost/db")


def test_a_removed_sqlite_lock_file_ends_the_lead(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lead.db'}"
    first, second = LearnerLock(url), LearnerLock(url)
    try:
        assert first.acquire()
        (tmp_path / "lead.db.learner-lock").unlink()  # someone cleans the folder up
        assert second.acquire()  # a new file: the other process can lock it
        assert not first.held() and not first.acquire()  # so this one steps down
    finally:
        first.release()
        second.release()

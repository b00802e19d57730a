"""API keys (``feedback_api.keys``): verified against the database, trusted for a while."""

from __future__ import annotations

import threading
import types
from pathlib import Path

import pytest

from feedback_api import keys as keys_module
from feedback_api.keys import KeyStore


class Clock:
    """Both of the module's clocks (wall and monotonic), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Clock:
        monkeypatch.setattr(keys_module, "time", types.SimpleNamespace(
            time=lambda: self.now, monotonic=lambda: self.now))
        return self


def test_a_verified_key_is_trusted_for_cache_s_and_a_revocation_elsewhere_lands_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock().install(monkeypatch)
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    here, elsewhere = KeyStore(url, cache_s=5.0), KeyStore(url)
    key, secret = here.create(name="app", scope="client")
    assert here.cached(secret) is None  # nothing verified yet
    assert here.verify(secret) == key
    assert here.cached(secret) == key
    assert here.cached("br-unknown") is None and here.verify("br-unknown") is None
    assert here.cached("br-unknown") is None  # an unknown secret is never kept
    assert elsewhere.revoke(key.id)  # another process (a replica, the CLI)
    clock.now += 4.9
    assert here.cached(secret) == key  # still trusted here, within cache_s
    assert elsewhere.verify(secret) is None
    clock.now += 0.2
    assert here.cached(secret) is None and here.verify(secret) is None
    here.close()
    elsewhere.close()


def test_revoking_or_rotating_here_stops_the_key_at_once(tmp_path: Path) -> None:
    keys = KeyStore(f"sqlite:///{tmp_path / 'keys.db'}", cache_s=60.0)
    a, a_secret = keys.create(name="a", scope="client")
    b, b_secret = keys.create(name="b", scope="client")
    assert keys.verify(a_secret) == a and keys.verify(b_secret) == b
    assert keys.revoke(a.id)
    assert keys.cached(a_secret) is None and keys.verify(a_secret) is None
    successor, new_secret = keys.rotate(b.id, grace_s=0.0)
    assert keys.cached(b_secret) is None and keys.verify(b_secret) is None
    assert keys.verify(new_secret) == successor
    keys.close()


def test_a_key_revoked_here_while_it_is_verified_is_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``revoke`` commits between ``verify``'s read and its keeping the key: the key read
    live is returned (its request began first) but not trusted after."""
    keys = KeyStore(f"sqlite:///{tmp_path / 'keys.db'}", cache_s=60.0)
    key, secret = keys.create(name="app", scope="client")
    public = keys_module._public

    def revoked_meanwhile(row: object) -> object:
        monkeypatch.setattr(keys_module, "_public", public)
        found = public(row)  # type: ignore[arg-type]
        assert keys.revoke(key.id)
        return found

    monkeypatch.setattr(keys_module, "_public", revoked_meanwhile)
    assert keys.verify(secret) == key
    assert keys.cached(secret) is None and keys.verify(secret) is None
    keys.close()


def test_an_expired_key_is_refused_even_when_trusted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock().install(monkeypatch)
    keys = KeyStore(f"sqlite:///{tmp_path / 'keys.db'}", cache_s=60.0)
    key, secret = keys.create(name="short", scope="client", expires_in_s=10.0)
    assert keys.verify(secret) == key and keys.cached(secret) == key
    clock.now += 10.0
    assert keys.cached(secret) is None and keys.verify(secret) is None
    keys.close()


def test_cache_s_zero_reads_every_time_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    keys = KeyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    key, secret = keys.create(name="app", scope="client")
    assert keys.verify(secret) == key and keys.cached(secret) is None
    keys.close()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cache_s"):
            KeyStore(f"sqlite:///{tmp_path / 'keys.db'}", cache_s=bad)


def test_keys_in_an_in_memory_database_are_seen_from_every_thread() -> None:
    """The service verifies keys on its request threads: with ``sqlite://`` each thread used
    to open its own empty database ("no such table: br_api_keys")."""
    keys = KeyStore("sqlite://")
    key, secret = keys.create(name="app", scope="client")
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(keys.verify(secret)))
    worker.start()
    worker.join()
    assert seen == [key]
    keys.close()

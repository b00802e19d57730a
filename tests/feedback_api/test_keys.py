"""API keys (``feedback_api.keys``): verified against the database, trusted for a while."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from feedback_api.keys import KeyStore


def test_a_verified_key_is_trusted_for_cache_s_and_a_revocation_elsewhere_lands_after(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    here, elsewhere = KeyStore(url, cache_s=0.3), KeyStore(url)
    key, secret = here.create(name="app", scope="client")
    assert here.cached(secret) is None  # nothing verified yet
    assert here.verify(secret) == key
    assert here.cached(secret) == key
    assert here.cached("br-unknown") is None and here.verify("br-unknown") is None
    assert here.cached("br-unknown") is None  # an unknown secret is never kept
    assert elsewhere.revoke(key.id)  # another process (a replica, the CLI)
    assert here.cached(secret) == key  # still trusted here, within cache_s
    assert elsewhere.verify(secret) is None
    time.sleep(0.35)
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


def test_an_expired_key_is_refused_even_when_trusted(tmp_path: Path) -> None:
    keys = KeyStore(f"sqlite:///{tmp_path / 'keys.db'}", cache_s=60.0)
    key, secret = keys.create(name="short", scope="client", expires_in_s=0.2)
    assert keys.verify(secret) == key and keys.cached(secret) == key
    time.sleep(0.25)
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

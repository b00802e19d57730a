"""Event ids per API key: a caller who names its events (``event_id`` on select) gets a
namespace of its own, so one key can neither take an id another key will use nor learn
whether another key used it (issue #19). The log stores ``k<tenant>~<name>`` (the tenant:
the first key of the caller's rotation chain); the caller sees and addresses ``<name>``.
Ids the router generates (random hex) are stored as they are.

>>> key = ApiKey(id=9, name="app", scope="client", prefix="", created_at=0.0, revoked_at=None,
...              tenant=7)
>>> stored_id(key, "req-1"), shown_id(key, "k7~req-1"), shown_id(key, "k8~req-1")
('k7~req-1', 'req-1', 'k8~req-1')
"""

from __future__ import annotations

from bandit_router import EventRecord, Router, UnknownEventError

from .keys import ApiKey

__all__ = ["MAX_NAME", "find_event", "shown_id", "stored_id"]

#: The longest name a caller may give an event: the log's 128 characters less room for the
#: key's prefix.
MAX_NAME = 100


def _prefix(key: ApiKey) -> str:
    return f"k{key.tenant}~"


def stored_id(key: ApiKey, name: str) -> str:
    """The log's id of the event ``key`` named ``name``."""
    return _prefix(key) + name


def shown_id(key: ApiKey, event_id: str) -> str:
    """What ``key`` calls a logged event: its own name for one it named, else the log's id."""
    prefix = _prefix(key)
    return event_id[len(prefix):] if event_id.startswith(prefix) else event_id


def find_event(lib: Router, key: ApiKey, event_id: str, *, fresh: bool = True) -> EventRecord:
    """The event ``key`` means by ``event_id``: one it named so, else the log's id as given
    (a generated id, an event named before namespaces, or any event for an admin key).
    Client keys see only their own events; any other is :class:`UnknownEventError`, exactly
    as if it did not exist. ``fresh=False``: a decision this process logged lately is taken
    from memory, its status and reward perhaps stale (see :meth:`Router.get_event`)."""
    for candidate in (stored_id(key, event_id), event_id):
        try:
            record = lib.get_event(candidate, fresh=fresh)
        except UnknownEventError:
            continue
        if key.scope == "admin" or record.metadata.get("owner") == key.tenant:
            return record
    raise UnknownEventError(event_id)

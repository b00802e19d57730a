"""The exception tree of bandit-router.

Every error the library raises on purpose derives from :class:`BanditRouterError`::

    BanditRouterError
    ├── InvalidInputError            (also a ValueError: the caller sent something malformed)
    │   ├── InvalidTaskError         empty task, task over the size limit
    │   ├── InvalidRewardError       quality outside [0, 1], NaN, negative cost or latency
    │   ├── InvalidConstraintsError  contradictory or out-of-range constraints
    │   ├── DuplicateEventError      ``select(event_id=...)`` with an id already logged
    │   └── CatalogError             a catalog file or price update that does not parse
    ├── NoEligibleModelError         constraints excluded every model; says why, per model
    ├── UnknownEventError            a reward or lookup for an event id never logged
    ├── UnknownModelError            a price update or constraint naming a model not in the catalog
    ├── DuplicateRewardError         a second reward for one event (earliest reward wins)
    ├── RewardWindowClosedError      a reward after the reward wait time; the default was learned
    ├── BudgetExceededError          every eligible model would break a spend limit
    └── ServiceError                 the HTTP service answered with an error (client side only)
        ├── AuthenticationError      401: no API key, or an unknown or revoked one
        ├── PermissionDeniedError    403: the key's scope does not allow the call
        └── PayloadTooLargeError     413: the request body is over the service's limit

The HTTP service maps each class to one status code; nothing else needs to know the tree.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "BanditRouterError",
    "BudgetExceededError",
    "CatalogError",
    "DuplicateEventError",
    "DuplicateRewardError",
    "InvalidConstraintsError",
    "InvalidInputError",
    "InvalidRewardError",
    "InvalidTaskError",
    "NoEligibleModelError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RewardWindowClosedError",
    "ServiceError",
    "UnknownEventError",
    "UnknownModelError",
]


#: Error kinds a reward may report for a failed call; a failed call has quality 0. Kept out
#: of ``__all__`` (which lists the exception classes); exported by the package.
ERROR_KINDS = frozenset({"rate_limit", "server_error", "timeout", "context_length",
                         "content_filter", "invalid_response", "other"})


class BanditRouterError(Exception):
    """Base class of every error raised on purpose by bandit-router."""


class InvalidInputError(BanditRouterError, ValueError):
    """The caller passed a value the router cannot accept."""


class InvalidTaskError(InvalidInputError):
    """The task text is empty, not a string, or over the configured size limit."""


class InvalidRewardError(InvalidInputError):
    """A reward value is out of range or not a finite number."""


class InvalidConstraintsError(InvalidInputError):
    """Constraints that are out of range or contradict each other."""


class DuplicateEventError(InvalidInputError):
    """A caller-supplied event id that is already in the event log."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event id {event_id!r} is already used")


class CatalogError(InvalidInputError):
    """A catalog file, catalog entry or price update that is malformed."""


class NoEligibleModelError(BanditRouterError):
    """No model in the catalog satisfies the request's constraints.

    ``reasons`` maps each model key (``provider/model``) to why it was excluded.
    """

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons: dict[str, str] = dict(reasons)
        detail = "; ".join(f"{key}: {why}" for key, why in sorted(self.reasons.items()))
        super().__init__(f"no model satisfies the constraints ({detail})")


class UnknownEventError(BanditRouterError, LookupError):
    """No decision with this event id was ever logged."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"unknown event id {event_id!r}")


class UnknownModelError(BanditRouterError, LookupError):
    """A model or provider that is not in the catalog."""


class DuplicateRewardError(BanditRouterError):
    """The event already has a reward; under the earliest-wins rule later ones are refused."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(
            f"event {event_id!r} already has a reward (rule: the earliest reward wins)"
        )


class RewardWindowClosedError(BanditRouterError):
    """The reward wait time of the event ran out and its default reward was learned."""

    def __init__(self, event_id: str, wait_s: float) -> None:
        self.event_id = event_id
        self.wait_s = wait_s
        super().__init__(
            f"event {event_id!r} passed its reward wait time of {wait_s:g}s; "
            "its default reward was already learned"
        )


class BudgetExceededError(BanditRouterError):
    """Every eligible model's estimated cost would break a budget, and the budget's
    ``on_exceed`` policy is ``"error"``.

    ``scope`` and ``window`` name the budget (``window`` is ``hour``, ``day``, ``month`` or
    ``request``); ``used_usd`` is what its window has spent and reserved so far;
    ``resets_at`` is the Unix time the window starts afresh (``None`` for a per-request
    limit, which no wait fixes).
    """

    def __init__(self, *, scope: str, window: str, limit_usd: float, used_usd: float,
                 resets_at: float | None, needed_usd: float) -> None:
        self.scope = scope
        self.window = window
        self.limit_usd = limit_usd
        self.used_usd = used_usd
        self.resets_at = resets_at
        self.needed_usd = needed_usd
        if window == "request":
            text = (f"budget {scope!r}: the cheapest eligible model is estimated at "
                    f"${needed_usd:.6f}, over the per-request limit of ${limit_usd:g}")
        else:
            text = (f"budget {scope!r} per {window}: ${used_usd:.6f} of ${limit_usd:g} used; "
                    f"the cheapest eligible model needs ${needed_usd:.6f}; the window resets "
                    f"at {resets_at:.0f} (Unix time)")
        super().__init__(text)


class ServiceError(BanditRouterError):
    """An error status from the HTTP service that has no library counterpart."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class AuthenticationError(ServiceError):
    """No API key, or one that is unknown or revoked."""


class PermissionDeniedError(ServiceError):
    """The API key's scope does not allow this call."""


class PayloadTooLargeError(ServiceError):
    """The request body is larger than the service accepts."""

"""What :meth:`Router.select` and :meth:`Router.reward` accept: every bad value becomes a
typed error (``InvalidTaskError``, ``InvalidRewardError``, ``UnknownModelError``) before
anything is logged, so the HTTP layer maps each to a 4xx with its message.

>>> check_weight(None, 20.0, "cost_weight"), check_weight(5, 20.0, "cost_weight")
(20.0, 5.0)
>>> check_reward(None, 0.01, None, 120, "timeout")
(0.0, 0.01, None, 120)
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from ._catalog import Catalog
from ._config import MAX_WEIGHT
from ._constraints import Constraints
from ._errors import (
    ERROR_KINDS,
    InvalidInputError,
    InvalidRewardError,
    InvalidTaskError,
    UnknownModelError,
)
from ._store import json_dumps

__all__ = ["MAX_ABS_REWARD", "MAX_COST_USD", "MAX_EVENT_ID", "MAX_LATENCY_S", "MAX_WEIGHT",
           "check_id", "check_input_tokens", "check_metadata", "check_names", "check_reward",
           "check_task", "check_time", "check_weight", "finite", "routable_task", "storable"]

#: Bounds that keep one absurd value from poisoning the policy (VW's weights are float32).
MAX_COST_USD = 1e4
MAX_LATENCY_S = 1e5
MAX_ABS_REWARD = 1e6
MAX_EVENT_ID = 128
#: Caller-supplied event ids and tenants: URL-safe characters only, so an id names one
#: route over HTTP.
_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
#: Constraint fields that name providers or models.
_PROVIDER_FIELDS = ("preferred_providers", "allowed_providers", "excluded_providers")
_MODEL_FIELDS = ("allowed_models", "excluded_models")


def finite(value: Any) -> bool:
    """A real number (not a bool) that is neither infinite nor NaN."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value))


#: The first moment a time bound may not reach: 10000-01-01T00:00:00Z, in Unix seconds.
MAX_TIME = 253_402_300_800.0


def check_time(name: str, value: Any) -> float | None:
    """A moment given as Unix seconds (``None`` passes through), as a float: a real number
    (not a bool) from 1970 up to the year 9999; else :class:`InvalidInputError`."""
    if value is None:
        return None
    if not (finite(value) and 0 <= value < MAX_TIME):
        raise InvalidInputError(f"{name} must be Unix seconds from 1970 to 9999, got {value!r}")
    return float(value)


def _unstorable(text: str) -> str | None:
    """Why a database could not store ``text`` as given, or None: a NUL (PostgreSQL refuses
    it) or a lone surrogate (not UTF-8)."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def storable(text: Any, *, max_chars: int) -> bool:
    """A name every database stores as given: a string of 1 to ``max_chars`` characters,
    without NUL or lone surrogates.

    >>> storable("tenant:a", max_chars=64), storable("a" + chr(0), max_chars=64)
    (True, False)
    """
    return (isinstance(text, str) and 0 < len(text) <= max_chars
            and _unstorable(text) is None)


def check_task(task: Any, *, max_chars: int) -> str:
    if not isinstance(task, str):
        raise InvalidTaskError(f"task must be a string, got {type(task).__name__}")
    if not task.strip():
        raise InvalidTaskError("task is empty")
    why = _unstorable(task)
    if why is not None:
        raise InvalidTaskError(f"task {why}")
    if len(task) > max_chars:
        raise InvalidTaskError(f"task has {len(task)} characters; the limit is "
                               f"{max_chars} (RouterConfig.max_task_chars)")
    return task


def routable_task(text: str, *, max_chars: int) -> str | None:
    """``text`` made into a task :func:`check_task` accepts, as an app would before calling
    the router, or None where nothing is left to route (empty or blank): NUL characters
    dropped, lone surrogates replaced by ``?``, and only the first ``max_chars``
    characters kept (the embedder reads the first 256 word pieces anyway). What a replay of
    a benchmark's table sends, so that one odd prompt in thousands does not stop it.

    >>> routable_task("a" + chr(0) + "b" + "c" * 10, max_chars=5)
    'abccc'
    >>> routable_task("  ", max_chars=5) is None
    True
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _unstorable(text) is not None:  # a lone surrogate
        text = text.encode("utf-8", "replace").decode("utf-8")
    text = text[:max_chars]
    return text if text.strip() else None


def check_weight(value: float | None, default: float, name: str) -> float:
    """A per-request cost or latency weight, or the router's ``default``."""
    if value is None:
        return default
    if not finite(value) or not 0 <= value <= MAX_WEIGHT:
        raise InvalidTaskError(f"{name} must be a number in [0, {MAX_WEIGHT:g}]")
    return float(value)


def check_input_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not 1 <= int(value) <= 100_000_000):
        raise InvalidTaskError("input_tokens must be an integer in [1, 100,000,000]")
    return int(value)


def check_id(value: Any, name: str) -> str:
    """A caller-supplied event id or tenant."""
    if not isinstance(value, str) or not _ID.fullmatch(value) or not value.strip("."):
        # (``.`` and ``..`` are path segments: no HTTP client can address them)
        raise InvalidTaskError(f"{name} must be 1 to 128 of A-Z a-z 0-9 . _ ~ : -, "
                               "not only dots")
    return value


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON the event log can store as given: no NaN, NUL or integer over 64 bits."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidTaskError("metadata must be a mapping")
    try:
        text = json.dumps(dict(metadata), allow_nan=False)
        json.dumps(dict(metadata), ensure_ascii=False).encode("utf-8")
        json_dumps(dict(metadata))  # as the store writes it: no integers over 64 bits
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidTaskError(f"metadata must be JSON without NaN or integers over 64 bits: "
                               f"{exc}") from None
    if "\\u0000" in text:
        raise InvalidTaskError("metadata contains a NUL character")
    return dict(metadata)


def check_names(constraints: Constraints, catalog: Catalog) -> None:
    """Names in constraints must exist in ``catalog`` (a model by name or provider/name): a
    typo must not silently exclude nothing."""
    if not any(getattr(constraints, field) for field in _PROVIDER_FIELDS + _MODEL_FIELDS):
        return  # nothing named: no need to list the catalog's names
    models = {s.model for s in catalog} | set(catalog.model_keys())
    for fields, known, what in ((_PROVIDER_FIELDS, set(catalog.providers()), "provider"),
                                (_MODEL_FIELDS, models, "model")):
        for field in fields:
            unknown = sorted((getattr(constraints, field) or frozenset()) - known)
            if unknown:
                raise UnknownModelError(f"{field} names unknown {what}(s) {unknown}")


def check_reward(quality: Any, cost_usd: Any, latency_s: Any, output_tokens: Any,
                 error: str | None) -> tuple[float, float | None, float | None, int | None]:
    """``(quality, cost_usd, latency_s, output_tokens)`` as numbers; a failed call
    (``error`` one of :data:`ERROR_KINDS`) counts as quality 0 when none is given."""
    if error is not None and error not in ERROR_KINDS:
        raise InvalidRewardError(f"error must be one of {sorted(ERROR_KINDS)}")
    if quality is None:
        if error is None:
            raise InvalidRewardError("quality is required unless error is given")
        quality = 0.0
    if not finite(quality) or not 0.0 <= quality <= 1.0:
        raise InvalidRewardError(f"quality must be a number in [0, 1], got {quality!r}")
    if error is not None and quality != 0:
        raise InvalidRewardError(f"a failed call ({error}) counts as quality 0: leave quality "
                                 f"out or send 0, got {quality!r}")
    for name, value, top in (("cost_usd", cost_usd, MAX_COST_USD),
                             ("latency_s", latency_s, MAX_LATENCY_S)):
        if value is not None and (not finite(value) or not 0 <= value <= top):
            raise InvalidRewardError(f"{name} must be a number in [0, {top:g}], "
                                     f"got {value!r}")
    if output_tokens is not None and (isinstance(output_tokens, bool)
                                      or not isinstance(output_tokens, numbers.Integral)
                                      or not 0 <= int(output_tokens) <= 10_000_000):
        raise InvalidRewardError("output_tokens must be an integer in [0, 10,000,000]")
    return (float(quality), float(cost_usd) if cost_usd is not None else None,
            float(latency_s) if latency_s is not None else None,
            int(output_tokens) if output_tokens is not None else None)

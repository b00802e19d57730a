"""Logged bandit history: :class:`LoggedDecision` and the file format that holds it.

The file format read by :func:`load_logged_decisions` is JSONL or CSV, one decision a row::

    {"event_id": "d-1017", "task": "Translate 'Hello' to French",
     "eligible": ["openai/gpt-4o", "gpt-4o-mini", "llama-3.1-8b-instant"],
     "chosen": "gpt-4o-mini", "probability": 0.25, "quality": 0.9, "cost_usd": 0.00004,
     "latency_s": 0.8, "output_tokens": 12, "input_tokens": 9, "timestamp": 1718000000.0}

``chosen``, ``probability``, ``quality``, ``cost_usd`` and ``task`` are required (a JSONL
row may give ``embedding``, a list of floats from the router's own embedder, with
``input_tokens`` instead of ``task``); the rest are optional (``eligible`` missing: the
whole catalog was eligible). In CSV, ``eligible`` is one cell of names separated by ``|``.
Other columns are ignored. Models are named ``provider/model`` or by a model name.

Pass the records to :meth:`Router.warm_start <bandit_router.Router.warm_start>`.
"""

from __future__ import annotations

import csv
import gzip
import json
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import InvalidInputError, InvalidRewardError, InvalidTaskError, UnknownModelError
from ._validation import MAX_COST_USD, MAX_LATENCY_S, finite

__all__ = ["LoggedDecision", "load_logged_decisions"]

#: The live bounds on rewards (``_validation``) apply: one absurd value must not poison VW.
_MAX_TOKENS = 100_000_000


def _count(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, numbers.Integral)
            and 0 <= int(value) <= _MAX_TOKENS)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedDecision:
    """One decision logged by another system (or an earlier deployment): what it chose,
    with which probability, and what came of it. Validated at construction.

    - ``task``: the request text; or ``embedding``, the task's vector from the router's own
      embedder (then ``input_tokens`` is required, as there is no text to count).
    - ``chosen``: the model called, ``provider/model`` or a model name.
    - ``probability`` in (0, 1]: the chance the logging policy gave ``chosen`` (1 for a
      deterministic policy, ``1/n`` for uniform random among ``n`` models).
    - ``eligible``: the models the logging policy chose among (default: the whole catalog);
      ``chosen`` must be one of them.
    - ``quality`` in [0, 1], ``cost_usd`` (dollars) and optionally ``latency_s``,
      ``output_tokens``: the outcome observed.
    - ``event_id``: the source system's id of the decision; it identifies the record, so a
      warm start skips records already logged.
    - ``timestamp``: when the decision was taken (Unix time), kept as the event's time.

    >>> LoggedDecision(task="Translate 'Hello' to French", chosen="gpt-4o-mini",
    ...                eligible=["gpt-4o", "gpt-4o-mini"], probability=0.5, quality=0.9,
    ...                cost_usd=0.00004).eligible
    ('gpt-4o', 'gpt-4o-mini')
    """

    chosen: str
    probability: float
    quality: float
    cost_usd: float
    task: str | None = None
    embedding: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
    eligible: tuple[str, ...] | None = None
    latency_s: float | None = None
    output_tokens: int | None = None
    input_tokens: int | None = None
    event_id: str | None = None
    timestamp: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.chosen, str) or not self.chosen:
            raise InvalidInputError("chosen must name the model that was called")
        p = self.probability
        if not finite(p) or not 0.0 < p <= 1.0:
            raise InvalidInputError(f"probability must be a number in (0, 1], got {p!r}")
        object.__setattr__(self, "probability", float(p))
        if not finite(self.quality) or not 0.0 <= self.quality <= 1.0:
            raise InvalidRewardError(f"quality must be a number in [0, 1], got "
                                     f"{self.quality!r}")
        object.__setattr__(self, "quality", float(self.quality))
        for name, top in (("cost_usd", MAX_COST_USD), ("latency_s", MAX_LATENCY_S)):
            value = getattr(self, name)
            if value is None and name == "latency_s":
                continue
            if not finite(value) or not 0 <= value <= top:
                raise InvalidRewardError(f"{name} must be a number in [0, {top:g}], "
                                         f"got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("output_tokens", "input_tokens"):
            value = getattr(self, name)
            if value is not None:
                if not _count(value):
                    raise InvalidInputError(f"{name} must be an integer in "
                                            f"[0, {_MAX_TOKENS:,}], got {value!r}")
                object.__setattr__(self, name, int(value))
        if self.input_tokens == 0:
            raise InvalidInputError("input_tokens must be at least 1")
        if self.task is not None and (not isinstance(self.task, str) or not self.task.strip()):
            raise InvalidTaskError("task must be a non-empty string")
        if self.embedding is not None:
            try:
                vector = np.array(self.embedding, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError):
                raise InvalidInputError("embedding must be a vector of numbers") from None
            if vector.size == 0 or not np.all(np.isfinite(vector)):
                raise InvalidInputError("embedding must be a non-empty vector of finite "
                                        "numbers")
            vector.setflags(write=False)
            object.__setattr__(self, "embedding", vector)
        if self.task is None and self.embedding is None:
            raise InvalidTaskError("a logged decision needs its task or its embedding")
        if self.task is None and self.input_tokens is None:
            raise InvalidInputError("without the task text, input_tokens is required")
        if self.eligible is not None:
            if isinstance(self.eligible, str):
                raise InvalidInputError("eligible must be a list of model names, not a string")
            names = tuple(self.eligible)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise InvalidInputError("eligible must list at least one model name")
            if len(set(names)) != len(names):
                raise InvalidInputError(f"eligible names a model twice: {list(names)}")
            if len(names) == 1 and self.probability != 1.0:
                raise InvalidInputError("with one eligible model, probability must be 1")
            object.__setattr__(self, "eligible", names)
        if self.event_id is not None and (not isinstance(self.event_id, str)
                                          or not 1 <= len(self.event_id) <= 1000):
            raise InvalidInputError("event_id must be a string of 1 to 1000 characters")
        if self.timestamp is not None:
            if not finite(self.timestamp) or self.timestamp < 0:
                raise InvalidInputError("timestamp must be a Unix time (seconds) >= 0")
            object.__setattr__(self, "timestamp", float(self.timestamp))


# -- names ------------------------------------------------------------------------------------

_PLAIN = (InvalidInputError, InvalidRewardError, InvalidTaskError, UnknownModelError)


def _located(exc: Exception, where: str) -> Exception:
    """The same error with ``where`` (a record, a file line) in front of its message."""
    if type(exc) in _PLAIN:
        return type(exc)(f"{where}: {exc}")
    return exc


_FIELDS = ("chosen", "probability", "quality", "cost_usd", "task", "embedding", "eligible",
           "latency_s", "output_tokens", "input_tokens", "event_id", "timestamp")
_NUMBERS = {"probability": float, "quality": float, "cost_usd": float, "latency_s": float,
            "timestamp": float, "output_tokens": int, "input_tokens": int}


def _from_row(row: dict[str, Any], *, csv_row: bool) -> LoggedDecision:
    values: dict[str, Any] = {}
    for name in _FIELDS:
        value = row.get(name)
        if value is None or (csv_row and value == ""):
            continue
        if csv_row:
            if name == "eligible":
                value = [n.strip() for n in value.split("|") if n.strip()]
            elif name == "embedding":
                raise InvalidInputError("embeddings are read from JSONL only")
            elif name in _NUMBERS:
                try:
                    number = float(value)
                except ValueError:
                    raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
                value = int(number) if _NUMBERS[name] is int and number.is_integer() else number
        elif _NUMBERS.get(name) is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        values[name] = value
    for name in ("chosen", "probability", "quality", "cost_usd"):
        if name not in values:
            raise InvalidInputError(f"{name} is missing")
    if "task" not in values and "embedding" not in values:
        raise InvalidInputError("task is missing")
    if "task" in values and not isinstance(values["task"], str):
        raise InvalidTaskError("task must be a string")
    for name in ("chosen", "event_id"):
        if name in values and not isinstance(values[name], str):
            values[name] = str(values[name])
    return LoggedDecision(**values)


def load_logged_decisions(path: str | Path, *,
                          limit: int | None = None) -> list[LoggedDecision]:
    """Read logged bandit decisions from a JSONL or CSV file (``.gz`` too), in file order;
    the format is in this module's docstring. A bad row raises the typed error of
    :class:`LoggedDecision`, with the file and line in its message; nothing is returned.

    Pass the result to :meth:`Router.warm_start`."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    out: list[LoggedDecision] = []
    is_json = ".jsonl" in path.name or ".json" in path.name
    with opener(path, "rt", newline="", encoding="utf-8") as fh:
        rows: Iterable[tuple[int, Any]]
        if is_json:
            rows = ((n, line) for n, line in enumerate(fh, start=1) if line.strip())
        else:
            reader = csv.DictReader(fh)
            rows = ((reader.line_num, row) for row in reader)
        for line, raw in rows:
            if limit is not None and len(out) >= limit:
                break
            try:
                row = json.loads(raw) if is_json else raw
                if not isinstance(row, dict):
                    raise InvalidInputError("a row must be a JSON object")
                out.append(_from_row(row, csv_row=not is_json))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{line}: not JSON ({exc})") from None
            except (InvalidInputError, UnknownModelError) as exc:
                raise _located(exc, f"{path}:{line}") from None
    return out

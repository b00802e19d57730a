"""Contexts and actions in Vowpal Wabbit's text format, written fast: a per-dimension template
for dense vectors, a per-names template for numeric namespaces, single features formatted
once. The only text :class:`~bandit_router.core.policies.VWPolicy` gives VW comes from here.

>>> text = ExampleText()
>>> text.shared({"T": {"code": 1.0, "len": 0.25}, "K": {"c4_1": 1.0}})
'shared |T code len:0.25 |K c4_1'
>>> text.features({"M": {"openai/gpt-4o": 1.0}, "A": {"cost": 0.0, "quality": 0.7}})
'|M openai/gpt-4o |A quality:0.7'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._base import Features

__all__ = ["ExampleText", "escaped_name"]

_UNSAFE = re.compile(r"[\s:|]")
_NAMES_CACHE_SIZE = 4096


def escaped_name(text: str) -> str:
    """A feature name VW reads as one name: whitespace, ``:`` and ``|`` become ``_``."""
    return _UNSAFE.sub("_", text)


class ExampleText:
    """Writes namespaced features as VW's text format. ``projection`` (input dim x output dim)
    projects dense vectors of the input dimension first."""

    def __init__(self, *, projection: np.ndarray | None = None) -> None:
        self._projection = projection
        self._templates: dict[int, list[str]] = {}
        self._last_shared: tuple[tuple[Any, ...], str] | None = None
        self._names: dict[str, str] = {}
        self._singles: dict[tuple[str, str, float], str] = {}
        #: ``|ns name:%.6g ...`` by namespace, names and the positions of zeros left out
        self._templates_by_names: dict[tuple[str, tuple[str, ...], tuple[int, ...]], str] = {}

    def _dense(self, vec: np.ndarray) -> str:
        """``index:value`` for each nonzero of a vector (projected first when configured),
        values to 5 significant digits."""
        if self._projection is not None and vec.shape[-1] == self._projection.shape[0]:
            vec = vec @ self._projection
        if vec.ndim != 1:
            return " ".join(f"{j}:{x:.5g}" for j, x in enumerate(vec.tolist()) if x != 0.0)
        nonzero = np.flatnonzero(vec)  # then one %-format call for the whole vector
        fields = self._fields(vec.shape[0])
        template = (" ".join(fields) if len(nonzero) == len(fields)
                    else " ".join([fields[j] for j in nonzero.tolist()]))
        return template % tuple(vec[nonzero].tolist())

    def _fields(self, dim: int) -> list[str]:
        fields = self._templates.get(dim)
        if fields is None:
            fields = self._templates[dim] = [f"{j}:%.5g" for j in range(dim)]
        return fields

    def _escaped(self, name: str) -> str:
        safe = self._names.get(name)
        if safe is None:
            if len(self._names) >= _NAMES_CACHE_SIZE:
                self._names.clear()
            safe = self._names[name] = escaped_name(name)
        return safe

    def features(self, features: Features) -> str:
        """The namespaces of one context or action: ``|ns name:value ... |ns ...``."""
        parts = []
        singles = self._singles
        for ns, values in features.items():
            if type(values) is not dict:  # (the ABC check below is slow for plain dicts)
                if isinstance(values, np.ndarray):
                    parts.append(f"|{ns} {self._dense(values)}")
                    continue
                if not isinstance(values, Mapping):
                    raise TypeError(f"namespace {ns!r} must be a mapping or a numpy vector")
            if len(values) == 1:  # a model, a provider, a cluster: formatted once
                ((name, value),) = values.items()
                key = (ns, name, value)
                part = singles.get(key)
                if part is None:
                    if len(singles) >= _NAMES_CACHE_SIZE:
                        singles.clear()
                    part = singles[key] = f"|{ns} {self._body(values)}"
                parts.append(part)
            else:
                parts.append(self._namespace(ns, values))
        return " ".join(parts)

    def _namespace(self, ns: str, values: Mapping[str, float]) -> str:
        """``|ns name:value ...`` by a template of the namespace's names (one formatting call)
        where no value is 1 (written bare); zeros are left out."""
        names, numbers = tuple(values), tuple(values.values())
        if 1.0 in numbers:
            return f"|{ns} {self._body(values)}"
        skip: tuple[int, ...] = ()
        if 0.0 in numbers:
            skip = tuple([j for j, v in enumerate(numbers) if v == 0.0])
            numbers = tuple([v for v in numbers if v != 0.0])
        template = self._templates_by_names.get((ns, names, skip))
        if template is None:
            if len(self._templates_by_names) >= _NAMES_CACHE_SIZE:
                self._templates_by_names.clear()
            kept = [self._escaped(k).replace("%", "%%") for j, k in enumerate(names)
                    if j not in skip]
            template = self._templates_by_names[(ns, names, skip)] = (
                f"|{ns} " + " ".join(f"{k}:%.6g" for k in kept))
        return template % numbers

    def _body(self, values: Mapping[str, float]) -> str:
        esc = self._escaped
        return " ".join([esc(k) if v == 1.0 else f"{esc(k)}:{v:.6g}"
                         for k, v in values.items() if v != 0.0])

    def shared(self, context: Features) -> str:
        """The shared line of a context; the last one is kept, since a log often holds the
        same task several times in a row (labelled history: one event per model)."""
        mark = tuple((ns, values.tobytes() if isinstance(values, np.ndarray)
                      else tuple(values.items())) for ns, values in context.items())
        last = self._last_shared
        if last is not None and last[0] == mark:
            return last[1]
        line = "shared " + self.features(context)
        self._last_shared = (mark, line)
        return line

"""Prices from a LiteLLM price table, applied to a router, and reloaded when the file changes.

LiteLLM publishes ``model_prices_and_context_window.json``: one JSON object whose keys are
model names, sometimes prefixed by a provider (``"gpt-4o"``, ``"gemini/gemini-2.5-pro"``),
and whose values give ``input_cost_per_token`` and ``output_cost_per_token`` in US dollars
per token, ``litellm_provider``, ``mode`` and the context limits. This module reads such a
file (plain or gzipped), finds the price of each catalog model in it, and changes the
router's prices where they differ (:meth:`Router.update_pricing
<bandit_router.Router.update_pricing>`, which stores them and uses them from the next
decision). :class:`PriceFileWatcher` calls back when the file's content changes, so a
service can follow a price file that another process keeps up to date.

>>> import json, tempfile
>>> from pathlib import Path
>>> from bandit_router import Catalog
>>> tmp = tempfile.TemporaryDirectory()
>>> path = Path(tmp.name) / "prices.json"
>>> _ = path.write_text(json.dumps({
...     "gpt-4o": {"litellm_provider": "openai", "mode": "chat",
...                "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
...     "groq/llama-3.1-8b-instant": {"litellm_provider": "groq", "mode": "chat",
...                "input_cost_per_token": 5e-08, "output_cost_per_token": 8e-08}}))
>>> prices = read_litellm_prices(path)
>>> prices["groq/llama-3.1-8b-instant"].model, prices["groq/llama-3.1-8b-instant"].provider
('llama-3.1-8b-instant', 'groq')
>>> found = match_prices(Catalog.default(), prices)
>>> found.prices["openai/gpt-4o"], found.prices["groq/llama-3.1-8b-instant"]
((2.5, 10.0), (0.05, 0.08))
>>> "anthropic/claude-opus-4-20250514" in found.unmatched
True
>>> tmp.cleanup()
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from ..core._catalog import Catalog
from ..core._errors import CatalogError, InvalidInputError

__all__ = [
    "PROVIDER_EQUIVALENTS",
    "LiteLLMPrice",
    "PriceFileWatcher",
    "PriceImport",
    "PriceMatch",
    "PricedRouter",
    "apply_price_file",
    "match_prices",
    "read_litellm_prices",
]

log = logging.getLogger("bandit_router")

#: Catalog provider name -> the ``litellm_provider`` values (and key prefixes) that serve the
#: same models at the same list prices, in order of preference. A provider not listed here
#: only matches itself.
PROVIDER_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "google": ("gemini", "vertex_ai-language-models"),
    "gemini": ("gemini", "vertex_ai-language-models"),
    "vertex_ai": ("vertex_ai-language-models", "vertex_ai-anthropic_models",
                  "vertex_ai-mistral_models", "vertex_ai-llama_models",
                  "vertex_ai-ai21_models"),
    "openai": ("openai", "text-completion-openai"),
    "mistral": ("mistral", "codestral"),
    "cohere": ("cohere_chat", "cohere"),
    "bedrock": ("bedrock", "bedrock_converse"),
    "together": ("together_ai",),
    "fireworks": ("fireworks_ai",),
}

#: Keys of the LiteLLM file that describe the format rather than a model.
_NOT_MODELS = frozenset({"sample_spec"})
#: Prices that differ by less than this (relative) are the same price.
_SAME_PRICE = 1e-9


def _equivalents(provider: str) -> tuple[str, ...]:
    names = PROVIDER_EQUIVALENTS.get(provider, ())
    return names if provider in names else (provider, *names)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteLLMPrice:
    """One usable entry of a LiteLLM price table; prices in US dollars per million tokens."""

    key: str
    provider: str
    model: str
    input_price_per_1m: float
    output_price_per_1m: float
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class PriceMatch:
    """The price found for each catalog model (``provider/model`` -> (input, output) per 1M),
    the catalog models without one, and the LiteLLM key each price came from."""

    prices: dict[str, tuple[float, float]]
    unmatched: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceImport:
    """What :func:`apply_price_file` did: the new prices of the models it changed, and the
    catalog models whose price was already right or that the file does not price."""

    changed: dict[str, tuple[float, float]]
    unchanged: tuple[str, ...]
    unmatched: tuple[str, ...]


class PricedRouter(Protocol):
    """What :func:`apply_price_file` needs of a router (:class:`~bandit_router.Router` is one)."""

    @property
    def catalog(self) -> Catalog: ...

    def update_pricing(self, provider: str,
                       prices: Mapping[str, Mapping[str, float]]) -> None: ...


def _cost_per_1m(value: Any) -> float | None:
    """USD per token -> USD per million tokens, or None if not a non-negative finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return round(float(value) * 1e6, 10)


def _token_limit(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


def _bare_model(key: str, provider: str) -> str:
    """``key`` without its provider prefix: ``groq/llama3-8b`` -> ``llama3-8b``; also strips
    a prefix that names the provider's family (``vertex_ai/`` for
    ``vertex_ai-anthropic_models``)."""
    prefix, slash, rest = key.partition("/")
    if slash and rest and (prefix == provider or provider.startswith((prefix + "-",
                                                                      prefix + "_"))):
        return rest
    return key


def _parse_entry(key: str, entry: Any) -> LiteLLMPrice | None:
    if key in _NOT_MODELS or not isinstance(entry, Mapping):
        return None
    input_price = _cost_per_1m(entry.get("input_cost_per_token"))
    output_price = _cost_per_1m(entry.get("output_cost_per_token"))
    if input_price is None or output_price is None:
        return None
    provider = entry.get("litellm_provider")
    if not isinstance(provider, str) or not provider:
        provider = key.partition("/")[0] if "/" in key else ""
    mode = entry.get("mode")
    return LiteLLMPrice(key=key, provider=provider, model=_bare_model(key, provider),
                        input_price_per_1m=input_price, output_price_per_1m=output_price,
                        max_input_tokens=_token_limit(entry.get("max_input_tokens")),
                        max_output_tokens=_token_limit(entry.get("max_output_tokens")),
                        mode=mode if isinstance(mode, str) else None)


def read_litellm_prices(path: str | os.PathLike[str]) -> dict[str, LiteLLMPrice]:
    """Read a LiteLLM price table (``.json``, or gzipped whatever its name) keyed as in it.

    Entries whose ``input_cost_per_token``/``output_cost_per_token`` are not non-negative
    finite numbers (image or audio models priced otherwise, the ``sample_spec``
    description) are skipped. Raises :class:`CatalogError` if the file cannot be read, does
    not parse, is not a JSON object, or prices no model at all (probably the wrong file).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read price file {path}: {exc}") from exc
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # BadGzipFile is an OSError
        raise CatalogError(f"price file {path} does not parse as (gzipped) JSON: {exc}") \
            from exc
    if not isinstance(data, dict):
        raise CatalogError(f"price file {path}: the top level must be a JSON object of models "
                           f"(LiteLLM's model_prices_and_context_window.json), "
                           f"got {type(data).__name__}")
    prices: dict[str, LiteLLMPrice] = {}
    for key, entry in data.items():
        price = _parse_entry(key, entry)
        if price is not None:
            prices[key] = price
    if not prices:
        raise CatalogError(f"price file {path} has no entry with numeric input_cost_per_token "
                           "and output_cost_per_token; is it a LiteLLM price table?")
    return prices


def match_prices(catalog: Catalog, prices: Mapping[str, LiteLLMPrice], *,
                 aliases: Mapping[str, str] | None = None) -> PriceMatch:
    """Find the LiteLLM price of every catalog model. For catalog key ``provider/model``:

    1. ``aliases[provider/model]``, a LiteLLM key, when given;
    2. the LiteLLM key ``provider/model`` itself (``gemini/gemini-2.5-pro``);
    3. for each name ``p`` of the provider's equivalents (the provider itself, then
       :data:`PROVIDER_EQUIVALENTS`, in order), the key ``p/model`` with
       ``litellm_provider == p``;
    4. the bare key ``model`` (``gpt-4o``) if its ``litellm_provider`` is the provider or an
       equivalent of it.

    An alias whose catalog key is not in the catalog, or whose LiteLLM key is not in
    ``prices`` (absent, or skipped for lack of numeric prices), raises :class:`CatalogError`:
    a typo must not silently leave a price stale.
    """
    aliases = dict(aliases or {})
    for catalog_key, litellm_key in aliases.items():
        if catalog_key not in catalog:
            raise CatalogError(f"price alias {catalog_key!r} -> {litellm_key!r}: "
                               f"{catalog_key!r} is not in the catalog")
        if litellm_key not in prices:
            raise CatalogError(f"price alias {catalog_key!r} -> {litellm_key!r}: the price "
                               f"file has no usable entry {litellm_key!r}")
    found: dict[str, tuple[float, float]] = {}
    sources: dict[str, str] = {}
    unmatched: list[str] = []
    for spec in catalog:
        source = aliases.get(spec.key)
        if source is None and spec.key in prices:
            source = spec.key
        if source is None:
            names = _equivalents(spec.provider)
            for name in names:
                prefixed = prices.get(f"{name}/{spec.model}")
                if prefixed is not None and prefixed.provider == name:
                    source = prefixed.key
                    break
            else:
                bare = prices.get(spec.model)
                if bare is not None and bare.provider in names:
                    source = bare.key
        if source is None:
            unmatched.append(spec.key)
            continue
        price = prices[source]
        found[spec.key] = (price.input_price_per_1m, price.output_price_per_1m)
        sources[spec.key] = source
    return PriceMatch(prices=found, unmatched=tuple(unmatched), sources=sources)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_SAME_PRICE, abs_tol=1e-12)


def apply_price_file(router: PricedRouter, path: str | os.PathLike[str], *,
                     aliases: Mapping[str, str] | None = None) -> PriceImport:
    """Read a LiteLLM price file and give the router's catalog models its prices.

    Only models whose price differs are updated, with one ``update_pricing`` call per
    provider (each call is atomic and stored). Every new price is validated before the first
    call, so a price the catalog refuses (:class:`CatalogError`) changes nothing.
    """
    match = match_prices(router.catalog, read_litellm_prices(path), aliases=aliases)
    changed: dict[str, tuple[float, float]] = {}
    unchanged: list[str] = []
    updates: dict[str, dict[str, dict[str, float]]] = {}
    for spec in router.catalog:
        if spec.key not in match.prices:
            continue
        new_in, new_out = match.prices[spec.key]
        if _same(new_in, spec.input_price_per_1m) and _same(new_out, spec.output_price_per_1m):
            unchanged.append(spec.key)
            continue
        try:
            replace(spec, input_price_per_1m=new_in, output_price_per_1m=new_out)
        except InvalidInputError as exc:
            raise CatalogError(f"price file {path}: {match.sources[spec.key]!r} gives "
                               f"{spec.key} a price the catalog refuses: {exc}") from exc
        changed[spec.key] = (new_in, new_out)
        updates.setdefault(spec.provider, {})[spec.model] = {
            "input_price_per_1m": new_in, "output_price_per_1m": new_out}
    for provider, models in updates.items():
        router.update_pricing(provider, models)
    if changed:
        log.info("price file %s: %d price(s) changed (%s)", path, len(changed),
                 ", ".join(sorted(changed)))
    return PriceImport(changed=changed, unchanged=tuple(unchanged), unmatched=match.unmatched)


_Snapshot = tuple[int, int, int]  # (inode, size, mtime in ns)
_MISSING: _Snapshot = (-1, -1, -1)
_RACY: _Snapshot = (-2, -2, -2)
#: A file modified less than this before a check is hashed again at the next check.
_RACY_NS = 2_000_000_000


class PriceFileWatcher:
    """Calls ``on_change()`` when the content of ``path`` changes.

    Typical use: ``PriceFileWatcher(path, lambda: apply_price_file(router, path))``.

    Behaviour:

    - :meth:`check` compares the file's inode, size and modification time with the last
      applied state; if they differ it hashes the bytes (SHA-256) and calls ``on_change``
      only if the content differs too, so a ``touch`` or a rewrite with the same bytes does
      not fire. It returns whether ``on_change`` ran and succeeded. A file modified less
      than two seconds before a check is hashed again at the next one, since a second write
      within the file system's timestamp granularity could keep size and mtime.
    - The first check only records the current content as applied and returns False, unless
      the watcher was made with ``fire_initial=True`` (then it calls ``on_change`` for the
      file as it is). A file missing at the first check counts as empty: its later creation
      is a change.
    - If ``on_change`` raises (a half-written file that does not parse, a price the catalog
      refuses), the error is logged on the ``bandit_router`` logger, kept in
      :attr:`last_error`, and the new content is *not* recorded as applied, so the next check
      calls ``on_change`` again. A missing or unreadable file is logged (once per outage) and
      retried; neither ever raises out of :meth:`check`.
    - :meth:`start` runs :meth:`check` every ``interval_s`` seconds in a daemon thread (it
      takes the first snapshot in the calling thread when no check ran yet, so changes made
      after ``start()`` returns are seen); :meth:`stop` stops and joins it. ``with watcher:``
      starts and stops. Checks are serialised, so ``on_change`` never runs twice at once.
    """

    def __init__(self, path: str | os.PathLike[str], on_change: Callable[[], object], *,
                 interval_s: float = 30.0, fire_initial: bool = False) -> None:
        if isinstance(interval_s, bool) or not isinstance(interval_s, int | float) \
                or not math.isfinite(interval_s) or interval_s <= 0:
            raise InvalidInputError("interval_s must be a positive number of seconds")
        self.path = Path(path)
        self.on_change = on_change
        self.interval_s = float(interval_s)
        self.fire_initial = fire_initial
        self.last_error: BaseException | None = None
        self._snapshot: _Snapshot | None = None  # None: no check yet
        self._digest: str | None = None  # of the applied content; None: file absent
        self._missing_logged = False
        self._failed_digest: str | None = None
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stat(self) -> _Snapshot:
        st = self.path.stat()
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _record(self, snapshot: _Snapshot, digest: str) -> None:
        # A file modified within the file system's timestamp granularity of this check could
        # change again with the same size and mtime ("racy" as git calls it): hash it again
        # at the next check instead of trusting its stat.
        if time.time_ns() - snapshot[2] < _RACY_NS:
            snapshot = _RACY
        self._snapshot, self._digest = snapshot, digest

    def check(self) -> bool:
        """Call ``on_change`` if the file's content changed since it was last applied."""
        with self._check_lock:
            first = self._snapshot is None
            try:
                snapshot = self._stat()
                data = None if snapshot == self._snapshot else self.path.read_bytes()
            except OSError as exc:
                if first:
                    self._snapshot = _MISSING
                    self._digest = None
                if not self._missing_logged:
                    log.warning("price file %s cannot be read: %s", self.path, exc)
                    self._missing_logged = True
                return False
            if self._missing_logged:
                log.info("price file %s is readable again", self.path)
                self._missing_logged = False
            if data is None:  # same inode, size and mtime as the applied state
                return False
            digest = hashlib.sha256(data).hexdigest()
            if (first and not self.fire_initial) or (not first and digest == self._digest):
                self._record(snapshot, digest)
                return False
            try:
                self.on_change()
            except Exception as exc:
                self.last_error = exc
                if digest != self._failed_digest:  # the traceback once per failing content
                    self._failed_digest = digest
                    log.exception("price file %s changed but applying it failed; retrying "
                                  "at each check", self.path)
                else:
                    log.warning("price file %s still fails to apply: %s", self.path, exc)
                return False
            # the snapshot taken *before* reading: a write after it shows up at the next check
            self._record(snapshot, digest)
            self.last_error = self._failed_digest = None
            return True

    # -- the background thread ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # never let the thread die
                log.exception("price file watcher for %s failed", self.path)

    def start(self) -> None:
        """Check every ``interval_s`` seconds in a daemon thread (no-op if already running)."""
        if self.running:
            return
        if self._snapshot is None:
            self.check()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True,
                                        name=f"price-file-watcher:{self.path.name}")
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait up to ``timeout`` seconds (default: for ever) for it."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> PriceFileWatcher:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

"""The catalog: which models the router may pick, their prices and priors.

A catalog file is JSON or TOML with a list of models::

    {"models": [
      {"provider": "openai", "model": "gpt-4o-mini",
       "input_price_per_1m": 0.15, "output_price_per_1m": 0.6,
       "avg_latency": 1.2, "quality_score": 0.68, "context_window": 128000}
    ]}

(in TOML: ``[[models]]`` tables with the same keys). Prices are US dollars per million tokens,
``avg_latency`` is seconds for a typical answer, ``quality_score`` is a prior in [0, 1] that the
router trusts until it has measured the model. ``typical_output_tokens`` is optional.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ._errors import CatalogError, UnknownModelError

if TYPE_CHECKING:  # (the client imports the catalog, and must not load numpy)
    import numpy as np
    import numpy.typing as npt

__all__ = ["Catalog", "ModelSpec"]

#: The highest price per million tokens accepted (the dearest models today cost hundreds).
MAX_PRICE_PER_1M = 100_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """One routable model: a model name served by one provider.

    >>> spec = ModelSpec(provider="openai", model="gpt-4o-mini", input_price_per_1m=0.15,
    ...                  output_price_per_1m=0.6, avg_latency=1.2, quality_score=0.68)
    >>> spec.key
    'openai/gpt-4o-mini'
    >>> round(spec.cost_usd(input_tokens=1000, output_tokens=500), 6)
    0.00045
    """

    provider: str
    model: str
    input_price_per_1m: float
    output_price_per_1m: float
    avg_latency: float = 2.0
    quality_score: float = 0.5
    context_window: int = 128_000
    typical_output_tokens: int | None = None
    #: The action id, ``provider/model`` (set from those two: read on every decision)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("provider", "model"):
            value = getattr(self, name)
            bad_provider = name == "provider" and "/" in str(value)
            if not isinstance(value, str) or not value.strip() or bad_provider:
                raise CatalogError(f"{name} must be a non-empty string (provider without '/')")
        for name, top in (("input_price_per_1m", MAX_PRICE_PER_1M),
                          ("output_price_per_1m", MAX_PRICE_PER_1M), ("avg_latency", 1e5)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or not 0 <= value <= top:
                raise CatalogError(f"{self.provider}/{self.model}: {name} must be a number "
                                   f"in [0, {top:g}]")
        q = self.quality_score
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= q <= 1.0:
            raise CatalogError(f"{self.provider}/{self.model}: quality_score must be in [0, 1]")
        if not isinstance(self.context_window, int) or self.context_window < 1:
            raise CatalogError(f"{self.provider}/{self.model}: context_window must be >= 1")
        t = self.typical_output_tokens
        if t is not None and (not isinstance(t, int) or t < 1):
            raise CatalogError(f"{self.provider}/{self.model}: typical_output_tokens must be >= 1")
        object.__setattr__(self, "key", f"{self.provider}/{self.model}")

    @overload
    def cost_usd(self, *, input_tokens: float, output_tokens: float) -> float: ...

    @overload
    def cost_usd(self, *, input_tokens: npt.NDArray[np.float64],
                 output_tokens: float) -> npt.NDArray[np.float64]: ...

    def cost_usd(self, *, input_tokens: float | npt.NDArray[np.float64],
                 output_tokens: float) -> float | npt.NDArray[np.float64]:
        """What a call with these token counts costs at this model's prices (``input_tokens``
        may be an array of calls' counts: their costs)."""
        return (input_tokens * self.input_price_per_1m
                + output_tokens * self.output_price_per_1m) / 1e6

    def to_dict(self) -> dict[str, Any]:
        """The fields :meth:`from_dict` takes."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        known = {f.name for f in fields(cls) if f.init}
        data = dict(data)
        key = data.pop("key", None)  # as to_dict() leaves it out and asdict() puts it in
        unknown = set(data) - known
        if unknown:
            raise CatalogError(f"unknown catalog fields {sorted(unknown)}; known: {sorted(known)}")
        try:
            spec = cls(**data)
        except TypeError as exc:  # a required field is missing
            raise CatalogError(f"bad catalog entry {data!r}: {exc}") from exc
        if key is not None and key != spec.key:
            raise CatalogError(f"key {key!r} does not match provider/model")
        return spec


class Catalog:
    """An ordered set of :class:`ModelSpec`, keyed by ``provider/model``.

    Prices can change while the router runs (:meth:`update_price`); the catalog itself is not
    thread-safe, the :class:`~bandit_router.Router` that owns it serialises access.

    >>> cat = Catalog([ModelSpec(provider="a", model="small", input_price_per_1m=0.1,
    ...                          output_price_per_1m=0.2)])
    >>> cat.update_price("a", "small", output_price_per_1m=0.4).output_price_per_1m
    0.4
    >>> len(Catalog.default()) > 5
    True
    """

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._models: dict[str, ModelSpec] = {}
        for spec in models:
            if not isinstance(spec, ModelSpec):
                raise CatalogError(f"catalog entries must be ModelSpec, got {type(spec).__name__}")
            if spec.key in self._models:
                raise CatalogError(f"duplicate catalog entry {spec.key}")
            self._models[spec.key] = spec
        if not self._models:
            raise CatalogError("a catalog needs at least one model")

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())

    def __contains__(self, key: object) -> bool:
        return key in self._models

    def model_keys(self) -> list[str]:
        """The ``provider/model`` key of every model, in catalog order."""
        return list(self._models)

    def get(self, key: str) -> ModelSpec:
        try:
            return self._models[key]
        except KeyError:
            raise UnknownModelError(f"model {key!r} is not in the catalog") from None

    def find(self, provider: str, model: str) -> ModelSpec:
        """The spec for ``model`` served by ``provider``."""
        return self.get(f"{provider}/{model}")

    def providers(self) -> list[str]:
        return sorted({spec.provider for spec in self})

    def update_price(self, provider: str, model: str, *,
                     input_price_per_1m: float | None = None,
                     output_price_per_1m: float | None = None) -> ModelSpec:
        """Change a model's prices; returns the new spec."""
        spec = self.find(provider, model)
        if input_price_per_1m is None and output_price_per_1m is None:
            raise CatalogError("a price update needs input_price_per_1m or output_price_per_1m")
        new = replace(  # validated again by __post_init__
            spec,
            input_price_per_1m=spec.input_price_per_1m if input_price_per_1m is None
            else input_price_per_1m,
            output_price_per_1m=spec.output_price_per_1m if output_price_per_1m is None
            else output_price_per_1m)
        self._models[spec.key] = new
        return new

    def to_dict(self) -> dict[str, Any]:
        return {"models": [spec.to_dict() for spec in self]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        models = data.get("models") if isinstance(data, Mapping) else None
        if not isinstance(models, list):
            raise CatalogError("a catalog is a mapping with a 'models' list")
        return cls(ModelSpec.from_dict(entry) for entry in models)

    @classmethod
    def from_file(cls, path: str | Path) -> Catalog:
        """Read a catalog from a ``.json`` or ``.toml`` file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc}") from exc
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CatalogError(f"catalog {path} does not parse: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def default(cls) -> Catalog:
        """The bundled catalog of current models (prices from the public LiteLLM table)."""
        bundled = resources.files("bandit_router.core").joinpath("data/default_catalog.json")
        text = bundled.read_text()
        return cls.from_dict(json.loads(text))

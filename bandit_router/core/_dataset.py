"""A routing data set: tasks, the models that could answer them, and each model's outcome
on each task. The history a router can warm-start from (:meth:`Router.warm_start`), and what
:mod:`bandit_router.eval.datasets` loads and :mod:`bandit_router.eval.replay` replays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ._catalog import MAX_PRICE_PER_1M, Catalog, ModelSpec
from ._errors import InvalidInputError
from ._features import estimate_tokens

__all__ = ["RoutingDataset", "fit_prices"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RoutingDataset:
    """``quality[i, j]``, ``cost[i, j]`` and ``latency[i, j]``: model ``j`` on task ``i``.

    ``dropped`` counts the tasks the loader left out because some model had no outcome on
    them (a missing score or cost)."""

    name: str
    task_ids: list[str]
    texts: list[str]
    models: list[str]
    quality: Array
    cost: Array
    latency: Array
    output_tokens: Array | None = None
    input_tokens: npt.NDArray[np.int64] | None = None
    embeddings: npt.NDArray[np.float32] | None = None
    groups: list[str] | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    dropped: int = 0

    def __post_init__(self) -> None:
        n, m = len(self.texts), len(self.models)
        if n == 0 or m == 0:
            raise InvalidInputError("a dataset needs at least one task and one model")
        for name in ("quality", "cost", "latency"):
            arr = getattr(self, name)
            if arr.shape != (n, m) or not np.all(np.isfinite(arr)):
                raise InvalidInputError(f"{name} must be a finite {n}x{m} matrix")
        if np.any((self.quality < 0) | (self.quality > 1)) or np.any(self.cost < 0):
            raise InvalidInputError("quality must be in [0, 1] and cost >= 0")
        if self.embeddings is not None:
            emb = self.embeddings
            if emb.ndim != 2 or len(emb) != n:
                raise InvalidInputError("one embedding per task (an n x d matrix)")
            if not np.all(np.isfinite(emb)):  # one NaN would poison the task memory's recall
                raise InvalidInputError("embeddings must be finite (a NaN or an infinity "
                                        f"in {int((~np.isfinite(emb).all(axis=1)).sum())} "
                                        "tasks' vectors)")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: Sequence[int] | npt.NDArray[np.int64]) -> RoutingDataset:
        idx = np.asarray(rows, dtype=np.int64)

        def pick(a: Any) -> Any:
            return None if a is None else a[idx]

        return RoutingDataset(
            name=self.name, task_ids=[self.task_ids[i] for i in idx],
            texts=[self.texts[i] for i in idx], models=list(self.models),
            quality=self.quality[idx], cost=self.cost[idx], latency=self.latency[idx],
            output_tokens=pick(self.output_tokens), input_tokens=pick(self.input_tokens),
            embeddings=pick(self.embeddings),
            groups=None if self.groups is None else [self.groups[i] for i in idx],
            prices=dict(self.prices), dropped=self.dropped)

    def with_models(self, models: Sequence[str], *, name: str | None = None
                    ) -> RoutingDataset:
        """The same tasks with only ``models`` as candidates (in the order given): a
        replay of what routing among fewer models would have done.

        >>> ds = RoutingDataset(name="d", task_ids=["a"], texts=["t"], models=["x", "y"],
        ...                     quality=np.array([[0.5, 1.0]]), cost=np.array([[0.1, 0.2]]),
        ...                     latency=np.ones((1, 2)))
        >>> only = ds.with_models(["y"])
        >>> only.models, only.quality.tolist()
        (['y'], [[1.0]])
        """
        unknown = [m for m in models if m not in self.models]
        if unknown or not models or len(set(models)) != len(models):
            raise InvalidInputError(f"with_models needs distinct models of {self.models}; "
                                    f"got {list(models)}")
        cols = [self.models.index(m) for m in models]

        def pick(a: Any) -> Any:
            return None if a is None else a[:, cols]

        return RoutingDataset(
            name=self.name if name is None else name, task_ids=list(self.task_ids),
            texts=list(self.texts), models=list(models), quality=self.quality[:, cols],
            cost=self.cost[:, cols], latency=self.latency[:, cols],
            output_tokens=pick(self.output_tokens), input_tokens=self.input_tokens,
            embeddings=self.embeddings, groups=self.groups,
            prices={m: p for m, p in self.prices.items() if m in models},
            dropped=self.dropped)

    def input_token_counts(self) -> Array:
        """Each task's input tokens: the dataset's, or else estimated from its text (about
        four characters a token, as the router estimates them)."""
        if self.input_tokens is not None:
            return self.input_tokens.astype(np.float64)
        return np.array([estimate_tokens(t) for t in self.texts], np.float64)

    def catalog(self, *, quality_prior: float = 0.5) -> Catalog:
        """A catalog of the dataset's models. Every model gets the same quality prior (a cold
        start: the router must learn who is good); prices are the dataset's, or else fitted
        to its costs (:func:`fit_prices`); latency priors are the dataset's means."""
        specs = []
        out_tokens = self.output_tokens
        in_tokens = self.input_token_counts()
        for j, name in enumerate(self.models):
            if name in self.prices:
                pin, pout = self.prices[name]
            else:
                out = out_tokens[:, j] if out_tokens is not None else np.full(len(self), 300.0)
                pin, pout = fit_prices(self.cost[:, j], in_tokens, out)
                if max(pin, pout) > MAX_PRICE_PER_1M:
                    raise InvalidInputError(
                        f"{self.name}: {name}'s costs (mean {np.mean(self.cost[:, j]):.4g} a "
                        f"task) fit a price of {max(pin, pout):.4g} USD per million tokens, "
                        f"over {MAX_PRICE_PER_1M:g}: costs must be USD per request")
            # "provider/model" (the model's own name may hold more slashes, as LiteLLM's
            # "together_ai/meta-llama/Llama-3-70b" does); a bare name is the dataset's
            provider, _, model = name.partition("/") if "/" in name else ("dataset", "", name)
            specs.append(ModelSpec(
                provider=provider, model=model, input_price_per_1m=pin,
                output_price_per_1m=pout, avg_latency=float(np.mean(self.latency[:, j])),
                quality_score=quality_prior, context_window=10_000_000,
                typical_output_tokens=max(1, int(np.mean(out_tokens[:, j])))
                if out_tokens is not None else None))
        return Catalog(specs)

    def model_keys(self) -> list[str]:
        return [s.key for s in self.catalog()]


def fit_prices(cost: npt.ArrayLike, input_tokens: npt.ArrayLike,
               output_tokens: npt.ArrayLike) -> tuple[float, float]:
    """Per-million-token input and output prices, both >= 0, that best reproduce ``cost``
    (least squares on ``input price × input tokens + output price × output tokens``).

    >>> n_in, n_out = np.array([100, 400, 50]), np.array([300, 20, 80])
    >>> pin, pout = fit_prices((2.0 * n_in + 6.0 * n_out) / 1e6, n_in, n_out)
    >>> round(pin, 6), round(pout, 6)
    (2.0, 6.0)
    """
    c = np.asarray(cost, np.float64)
    x = np.stack([np.asarray(input_tokens, np.float64), np.asarray(output_tokens, np.float64)],
                 axis=1) / 1e6
    fits = []
    solution = np.linalg.lstsq(x, c, rcond=None)[0]
    if np.all(solution >= 0):
        fits.append((float(solution[0]), float(solution[1])))
    for col in (0, 1):  # one price alone, the other zero
        denom = float(x[:, col] @ x[:, col])
        if denom > 0:
            price = max(0.0, float(x[:, col] @ c) / denom)
            fits.append((price, 0.0) if col == 0 else (0.0, price))
    if not fits:
        return 0.0, 0.0
    return min(fits, key=lambda f: float(np.sum((x @ np.array(f) - c) ** 2)))

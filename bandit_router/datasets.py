"""Routing datasets: tasks, and for every model the outcome it had on each.

Loaders:
- :func:`load_mmlu_pro` — the MMLU-Pro files of ``shared/data/mmlu_pro`` (12,032 questions ×
  31 models; by default the 13 priced chat models on the questions all of them answered);
- :func:`load_routerbench` — RouterBench's published table (``prompt``, one quality column
  per model, ``<model>|total_cost``, ``<model>|model_response``), as CSV or pickle;
- :func:`load_log` — your own logs, JSONL or CSV, one row per (task, model)::

      {"task_id": "q1", "task": "text", "model": "gpt-4o", "quality": 1.0,
       "cost_usd": 0.0042, "output_tokens": 310, "latency_s": 2.1}

  (``output_tokens`` and ``latency_s`` optional; tasks missing a model are dropped).

Latency is not in these data, so it is modelled per model as
``base_latency_s + output_tokens / tokens_per_s`` (defaults 0.4 s and 80 tokens/s), unless a
log gives ``latency_s``.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._catalog import Catalog, ModelSpec
from ._errors import InvalidInputError

__all__ = [
    "MMLU_PRO_CANDIDATES", "PrecomputedEmbedder", "RoutingDataset", "default_data_dir",
    "load_log", "load_mmlu_pro", "load_routerbench", "synthetic_dataset",
]

Array = npt.NDArray[np.float64]

MMLU_PRO_CANDIDATES: tuple[str, ...] = (
    "gpt-4o-2024-05-13", "gemini-1.5-pro-002", "gemini-1.5-flash-002", "deepseek-chat-v2",
    "DeepSeek-Coder-V2", "Meta-Llama-3.1-70B-Instruct", "Meta-Llama-3.1-8B-Instruct",
    "Mixtral-8x7B-Instruct-v0.1", "Mistral-7B-Instruct-v0.2", "Mistral-7B-Instruct-v0.1",
    "Phi-3-mini-4k-instruct", "c4ai-command-r-v01", "jamba-1.5-large",
)


def default_data_dir() -> Path:
    """``$BANDIT_ROUTER_DATA`` or ``../shared/data`` from the working directory."""
    return Path(os.environ.get("BANDIT_ROUTER_DATA", "../shared/data"))


@dataclass(frozen=True)
class RoutingDataset:
    """``quality[i, j]``, ``cost[i, j]`` and ``latency[i, j]``: model ``j`` on task ``i``."""

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
        if self.embeddings is not None and len(self.embeddings) != n:
            raise InvalidInputError("one embedding per task")

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
            prices=dict(self.prices))

    def catalog(self, *, quality_prior: float = 0.5) -> Catalog:
        """A catalog of the dataset's models. Every model gets the same quality prior (a cold
        start: the router must learn who is good); prices are the dataset's, or derived from
        the mean cost; latency priors are the dataset's means."""
        specs = []
        out_tokens = self.output_tokens
        for j, name in enumerate(self.models):
            if name in self.prices:
                pin, pout = self.prices[name]
            else:  # a flat price per token that reproduces the mean cost
                tokens = float(np.mean(out_tokens[:, j])) if out_tokens is not None else 500.0
                pin = pout = 1e6 * float(np.mean(self.cost[:, j])) / max(tokens, 1.0)
            provider, _, model = name.rpartition("/")
            specs.append(ModelSpec(
                provider=provider or "dataset", model=model, input_price_per_1m=pin,
                output_price_per_1m=pout, avg_latency=float(np.mean(self.latency[:, j])),
                quality_score=quality_prior, context_window=10_000_000,
                typical_output_tokens=max(1, int(np.mean(out_tokens[:, j])))
                if out_tokens is not None else None))
        return Catalog(specs)

    def model_keys(self) -> list[str]:
        return [s.key for s in self.catalog()]


def _latency(output_tokens: Array, base_s: float = 0.4, tokens_per_s: float = 80.0) -> Array:
    return base_s + output_tokens / tokens_per_s


def load_mmlu_pro(path: str | Path | None = None, *,
                  models: Sequence[str] = MMLU_PRO_CANDIDATES,
                  with_embeddings: bool = True, limit: int | None = None) -> RoutingDataset:
    """The MMLU-Pro routing outcomes. Questions that any of ``models`` did not answer are
    dropped (not treated as that model being unavailable), leaving 10,225 for the default
    13 models. The task text is ``prompt_zero_shot``; quality is 1/0 correctness."""
    root = Path(path) if path is not None else default_data_dir() / "mmlu_pro"
    if not (root / "prompts.jsonl.gz").exists():
        raise FileNotFoundError(f"no MMLU-Pro data at {root} (set BANDIT_ROUTER_DATA)")
    with open(root / "models.csv", newline="") as fh:
        prices = {r["model"]: (float(r["input_usd_per_mtok"]), float(r["output_usd_per_mtok"]))
                  for r in csv.DictReader(fh) if r["model"] in models
                  and r["input_usd_per_mtok"]}
    prompts: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    with gzip.open(root / "prompts.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            qid = str(row["question_id"])
            prompts[qid] = row
            order.append(qid)
    col = {m: j for j, m in enumerate(models)}
    outcome: dict[str, dict[int, tuple[float, float, float]]] = defaultdict(dict)
    with gzip.open(root / "outcomes_long.csv.gz", "rt", newline="") as fh:
        for r in csv.DictReader(fh):
            j = col.get(r["model"])
            if j is None or not r["cost_usd_est"]:
                continue
            outcome[r["question_id"]][j] = (float(r["correct"]), float(r["cost_usd_est"]),
                                            float(r["output_tokens_cl100k"]))
    keep = [q for q in order if len(outcome.get(q, {})) == len(models)]
    if limit is not None:
        keep = keep[:limit]
    m = len(models)
    quality, cost, tokens = (np.zeros((len(keep), m)) for _ in range(3))
    for i, q in enumerate(keep):
        for j, (c, usd, tok) in outcome[q].items():
            quality[i, j], cost[i, j], tokens[i, j] = c, usd, tok
    embeddings = None
    if with_embeddings and (root / "embeddings_all-MiniLM-L6-v2.f16.npy").exists():
        all_emb = np.load(root / "embeddings_all-MiniLM-L6-v2.f16.npy")
        ids = (root / "embeddings_question_ids.txt").read_text().split()
        row_of = {q: i for i, q in enumerate(ids)}
        embeddings = all_emb[[row_of[q] for q in keep]].astype(np.float32)
        embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return RoutingDataset(
        name="mmlu_pro", task_ids=keep, texts=[prompts[q]["prompt_zero_shot"] for q in keep],
        models=list(models), quality=quality, cost=cost, latency=_latency(tokens),
        output_tokens=tokens,
        input_tokens=np.array([int(prompts[q]["input_tokens_cl100k"]) for q in keep]),
        embeddings=embeddings, groups=[prompts[q]["category"] for q in keep], prices=prices)


def load_routerbench(path: str | Path, *, limit: int | None = None) -> RoutingDataset:
    """RouterBench's table: ``prompt``, a quality column per model, ``<model>|total_cost``
    (``.csv`` or a pandas ``.pkl``)."""
    path = Path(path)
    if path.suffix in (".pkl", ".pickle"):
        import pandas as pd  # RouterBench ships pickles of pandas frames

        rows = pd.read_pickle(path).to_dict("records")
    else:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    if not rows:
        raise InvalidInputError(f"{path} has no rows")
    models = [c[: -len("|total_cost")] for c in rows[0] if str(c).endswith("|total_cost")]
    if not models:
        raise InvalidInputError(f"{path} has no '<model>|total_cost' columns")
    rows = rows[:limit] if limit is not None else rows
    quality = np.array([[float(r[m]) for m in models] for r in rows])
    cost = np.array([[float(r[f"{m}|total_cost"]) for m in models] for r in rows])
    tokens = np.full(quality.shape, 300.0)  # not published: a typical answer length
    ids = [str(r.get("sample_id", i)) for i, r in enumerate(rows)]
    return RoutingDataset(name=path.stem, task_ids=ids, texts=[str(r["prompt"]) for r in rows],
                          models=models, quality=np.clip(quality, 0, 1), cost=cost,
                          latency=_latency(tokens), output_tokens=tokens,
                          groups=[str(r.get("eval_name", "")) for r in rows])


def load_log(path: str | Path, *, limit: int | None = None) -> RoutingDataset:
    """Your own logs: JSONL or CSV, one row per (task, model); see the module docstring."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        if ".jsonl" in path.name or ".json" in path.name:
            records = [json.loads(line) for line in fh if line.strip()]
        else:
            records = list(csv.DictReader(fh))
    tasks: dict[str, str] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    models: list[str] = []
    for r in records:
        try:
            tid, model = str(r["task_id"]), str(r["model"])
            tasks.setdefault(tid, str(r["task"]))
            cells[(tid, model)] = r
            if model not in models:
                models.append(model)
        except KeyError as exc:
            raise InvalidInputError(f"{path}: every row needs task_id, task, model, quality, "
                                    f"cost_usd (missing {exc})") from None
    ids = [t for t in tasks if all((t, m) in cells for m in models)]
    ids = ids[:limit] if limit is not None else ids
    shape = (len(ids), len(models))
    quality, cost, tokens, latency = (np.zeros(shape) for _ in range(4))
    for i, t in enumerate(ids):
        for j, m in enumerate(models):
            r = cells[(t, m)]
            quality[i, j], cost[i, j] = float(r["quality"]), float(r["cost_usd"])
            tok = r.get("output_tokens")
            tokens[i, j] = float(tok) if tok not in (None, "") else 300.0
            lat = r.get("latency_s")
            latency[i, j] = float(lat) if lat not in (None, "") and math.isfinite(
                float(lat)) else float(_latency(np.array(tokens[i, j])))
    return RoutingDataset(name=path.stem.split(".")[0], task_ids=ids,
                          texts=[tasks[t] for t in ids], models=models, quality=quality,
                          cost=cost, latency=latency, output_tokens=tokens)


def synthetic_dataset(n: int = 3000, *, seed: int = 0) -> RoutingDataset:
    """The built-in simulated workload as a dataset: every model's outcome on every task."""
    from .simulation import SyntheticWorkload

    wl = SyntheticWorkload(seed=seed)
    tasks = wl.tasks(n)
    outcomes = [[wl.outcome(t, k) for k in wl.keys] for t in tasks]
    return RoutingDataset(
        name="synthetic", task_ids=[str(i) for i in range(n)], texts=[t.text for t in tasks],
        models=list(wl.keys),
        quality=np.array([[o.quality for o in row] for row in outcomes]),
        cost=np.array([[o.cost_usd for o in row] for row in outcomes]),
        latency=np.array([[o.latency_s for o in row] for row in outcomes]),
        output_tokens=np.array([[float(o.output_tokens) for o in row] for row in outcomes]),
        groups=[t.topic for t in tasks],
        prices={k: (wl.catalog.get(k).input_price_per_1m, wl.catalog.get(k).output_price_per_1m)
                for k in wl.keys})


class PrecomputedEmbedder:
    """Serves a dataset's precomputed embeddings by task text; other texts go to ``fallback``
    (or raise). Keeps replays fast; the figures must also be reproduced once with the
    router's own embedder."""

    def __init__(self, texts: Sequence[str], vectors: npt.NDArray[np.float32], *,
                 name: str = "all-MiniLM-L6-v2", fallback: Any = None) -> None:
        self._rows = {t: i for i, t in enumerate(texts)}
        self._vectors = np.asarray(vectors, np.float32)
        self.dim = int(self._vectors.shape[1])
        self.name = name
        self.fallback = fallback

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dim), np.float32)
        for k, text in enumerate(texts):
            row = self._rows.get(text)
            if row is not None:
                out[k] = self._vectors[row]
            elif self.fallback is not None:
                out[k] = self.fallback.embed([text])[0]
            else:
                raise KeyError("text without a precomputed embedding")
        return out

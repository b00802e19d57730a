"""Routing datasets: tasks, and for every model the outcome it had on each.

Loaders:
- :func:`load_mmlu_pro` — the MMLU-Pro files of ``shared/data/mmlu_pro`` (12,032 questions ×
  31 models; by default the 13 priced chat models on the questions all of them answered);
- :func:`load_routerbench` — RouterBench's published table (``prompt``, one quality column
  per model, ``<model>|total_cost``, ``<model>|model_response``), as CSV (``.csv.gz`` too)
  or pickle; rows where a model has no score or no cost are dropped and counted;
- :func:`load_log` — your own logs, JSONL or CSV, one row per (task, model)::

      {"task_id": "q1", "task": "text", "model": "gpt-4o", "quality": 1.0,
       "cost_usd": 0.0042, "output_tokens": 310, "latency_s": 2.1}

  (``output_tokens`` and ``latency_s`` optional; tasks missing a model are dropped and
  counted).

A dataset without published prices gets a catalog whose per-model input and output prices are
fitted to its costs (``cost ≈ input price × input tokens + output price × output tokens``,
tokens estimated from the text where not given), so that the router's per-request cost
estimate follows the data's costs, long prompts included.

Latency is not in these data, so it is modelled per model as
``base_latency_s + output_tokens / tokens_per_s`` (defaults 0.4 s and 80 tokens/s), unless a
log gives ``latency_s``.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core._dataset import RoutingDataset, fit_prices
from ..core._errors import InvalidInputError
from ..core._features import estimate_tokens

__all__ = [
    "MMLU_PRO_CANDIDATES", "PrecomputedEmbedder", "RoutingDataset", "default_data_dir",
    "fit_prices", "load_log", "load_mmlu_pro", "load_routerbench", "load_table",
    "mmlu_pro_models", "mmlu_pro_prices", "synthetic_dataset", "table_name",
]

Array = npt.NDArray[np.float64]

log = logging.getLogger("bandit_router")

MMLU_PRO_CANDIDATES: tuple[str, ...] = (
    "gpt-4o-2024-05-13", "gemini-1.5-pro-002", "gemini-1.5-flash-002", "deepseek-chat-v2",
    "DeepSeek-Coder-V2", "Meta-Llama-3.1-70B-Instruct", "Meta-Llama-3.1-8B-Instruct",
    "Mixtral-8x7B-Instruct-v0.1", "Mistral-7B-Instruct-v0.2", "Mistral-7B-Instruct-v0.1",
    "Phi-3-mini-4k-instruct", "c4ai-command-r-v01", "jamba-1.5-large",
)


def default_data_dir() -> Path:
    """``$BANDIT_ROUTER_DATA`` or ``../shared/data`` from the working directory."""
    return Path(os.environ.get("BANDIT_ROUTER_DATA", "../shared/data"))


#: how far outside [0, 1] a table's score may be and still count as rounding (it is clipped)
_SCORE_SLACK = 1e-6


#: Grades written as words (pandas writes a column of booleans to CSV as True/False).
_TRUTH = {"true": 1.0, "false": 0.0}


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing cell ('', None, NaN, text that is no number);
    True and False (as written by pandas for a column of booleans) are 1 and 0.

    >>> _number("0.5"), _number("False"), _number(" TRUE "), _number("n/a"), _number("nan")
    (0.5, 0.0, 1.0, None, None)
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().lower() in _TRUTH:
        return _TRUTH[value.strip().lower()]
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _open_text(path: Path) -> Any:
    """A text file, gzipped or not (by its suffix), read as UTF-8 with or without a BOM
    (spreadsheets write one: it would otherwise become part of the first column's name)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return open(path, newline="", encoding="utf-8-sig")


#: The longest CSV cell read: a benchmark's prompt or model response can be longer than
#: csv's default limit (131,072 characters), which would stop the load with ``_csv.Error``.
_CSV_FIELD_LIMIT = 2**31 - 1


def _csv_rows(fh: Any) -> list[dict[str, Any]]:
    """Every row of a CSV file open as text, cells of any length (csv's limit raised for
    the read, then put back)."""
    before = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        return list(csv.DictReader(fh))
    finally:
        csv.field_size_limit(before)


def _is_pickle(path: Path) -> bool:
    """Whether ``path`` names a pickle (RouterBench's ``.pkl`` files) by its suffixes."""
    return ".pkl" in path.suffixes or ".pickle" in path.suffixes


def _pickled_rows(path: Path) -> list[dict[str, Any]]:
    """The records of a pandas DataFrame pickled at ``path`` (RouterBench's published
    files: ``routerbench_0shot.pkl``, ``routerbench_5shot.pkl``). Unpickling runs code the
    file names: read only pickles you trust."""
    try:
        import pandas as pd
    except ImportError:
        raise InvalidInputError(
            f"{path} is a pandas pickle, and reading one needs pandas: "
            "pip install 'bandit-router[routerbench]' (or save it as CSV: "
            "pandas.read_pickle(path).to_csv('table.csv.gz', index=False))") from None
    frame = pd.read_pickle(path)
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"{path} holds a {type(frame).__name__}, not a DataFrame")
    return list(frame.to_dict("records"))


def _no_prompt(value: Any) -> bool:
    """A prompt cell with nothing in it: None, NaN, or text (turns joined as
    :func:`_prompt_text` joins them) that is empty or blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return not _prompt_text(value).strip()


def _prompt_text(value: Any) -> str:
    """A table's prompt as the router's task text: a list of turns (RouterBench's
    multi-turn prompts) joined by blank lines; anything else as text."""
    if isinstance(value, list | tuple):
        return "\n\n".join(str(turn) for turn in value)
    if isinstance(value, np.ndarray):  # turns as pandas may hold them
        return _prompt_text(value.tolist())
    return str(value)


def _latency(output_tokens: Array, base_s: float = 0.4, tokens_per_s: float = 80.0) -> Array:
    return base_s + output_tokens / tokens_per_s


def mmlu_pro_prices(path: str | Path | None = None) -> dict[str, tuple[float, float]]:
    """Every MMLU-Pro model with a public price (``models.csv``): input and output USD per
    million tokens, in the file's order (19 of its 31 models: the 13 chat models of
    :data:`MMLU_PRO_CANDIDATES` and 6 base models)."""
    root = Path(path) if path is not None else default_data_dir() / "mmlu_pro"
    with open(root / "models.csv", newline="") as fh:
        return {r["model"]: (float(r["input_usd_per_mtok"]), float(r["output_usd_per_mtok"]))
                for r in csv.DictReader(fh) if r["input_usd_per_mtok"]}


def mmlu_pro_models(path: str | Path | None = None) -> list[str]:
    """Every model of the MMLU-Pro outcomes (``models.csv``), in the file's order: 31, of
    which 19 have a public price."""
    root = Path(path) if path is not None else default_data_dir() / "mmlu_pro"
    with open(root / "models.csv", newline="") as fh:
        return [r["model"] for r in csv.DictReader(fh)]


def load_mmlu_pro(path: str | Path | None = None, *,
                  models: Sequence[str] = MMLU_PRO_CANDIDATES,
                  with_embeddings: bool = True, limit: int | None = None,
                  price_per_mtok: float | None = None) -> RoutingDataset:
    """The MMLU-Pro routing outcomes. Questions that any of ``models`` did not answer are
    dropped (not treated as that model being unavailable), leaving 10,225 for the default
    13 models. The task text is ``prompt_zero_shot``; quality is 1/0 correctness.

    Costs are the data's estimates at each model's public price; with ``price_per_mtok``
    every model costs that many USD per million tokens, input and output alike, on the
    question's tokens (as RouterDC-7's costs are modelled), so models without a public
    price can take part."""
    if price_per_mtok is not None and not (math.isfinite(price_per_mtok)
                                           and price_per_mtok >= 0):
        raise InvalidInputError("price_per_mtok must be a finite number >= 0")
    root = Path(path) if path is not None else default_data_dir() / "mmlu_pro"
    if not (root / "prompts.jsonl.gz").exists():
        raise FileNotFoundError(f"no MMLU-Pro data at {root} (set BANDIT_ROUTER_DATA)")
    prices = ({m: (price_per_mtok, price_per_mtok) for m in models}
              if price_per_mtok is not None
              else {m: p for m, p in mmlu_pro_prices(root).items() if m in models})
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
            if j is None:
                continue
            if price_per_mtok is not None:
                usd = price_per_mtok * (float(r["input_tokens_cl100k"])
                                        + float(r["output_tokens_cl100k"])) / 1e6
            elif r["cost_usd_est"]:
                usd = float(r["cost_usd_est"])
            else:
                continue
            outcome[r["question_id"]][j] = (float(r["correct"]), usd,
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


#: What a table's file name ends with, left out of its name (longest first).
_TABLE_SUFFIXES = (".pickle.gz", ".jsonl.gz", ".json.gz", ".csv.gz", ".pkl.gz", ".pickle",
                   ".jsonl", ".json", ".csv", ".pkl", ".gz")


def table_name(file_name: str) -> str:
    """A table's name (its data set's, its workload's, its replays' event ids): its file's
    name without the format's suffix.

    >>> table_name("gpt-4.1-log.jsonl.gz"), table_name("routerbench_0shot.pkl.gz")
    ('gpt-4.1-log', 'routerbench_0shot')
    >>> table_name("Traffic.CSV"), table_name("notes.txt")
    ('Traffic', 'notes.txt')
    """
    lower = file_name.lower()
    for suffix in _TABLE_SUFFIXES:
        if lower.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return file_name


def load_routerbench(path: str | Path, *, limit: int | None = None) -> RoutingDataset:
    """RouterBench's table: ``prompt``, a quality column per model, ``<model>|total_cost``
    and optionally ``<model>|model_response`` (``.csv``, ``.csv.gz`` or a pandas pickle).

    A row without a prompt, or where any model has no score or no cost (an empty cell, NaN,
    text), is dropped: ``dataset.dropped`` says how many, and a warning is logged. Input
    tokens are estimated from the prompt, output tokens from each model's response where
    the table has one (else 300), at about four characters a token."""
    path = Path(path)
    if _is_pickle(path):
        rows = _pickled_rows(path)  # RouterBench ships pickles of pandas frames
    else:
        with _open_text(path) as fh:
            rows = _csv_rows(fh)
    if not rows:
        raise InvalidInputError(f"{path} has no rows")
    if "prompt" not in rows[0]:
        raise InvalidInputError(f"{path} has no 'prompt' column (RouterBench's format: "
                                "prompt, one score column per model, '<model>|total_cost')")
    models = [c[: -len("|total_cost")] for c in rows[0] if str(c).endswith("|total_cost")]
    if not models:
        raise InvalidInputError(f"{path} has no '<model>|total_cost' columns")
    missing = [m for m in models if m not in rows[0]]
    if missing:
        raise InvalidInputError(f"{path} has costs but no score column for {missing}")
    kept: list[tuple[dict[str, Any], list[float], list[float]]] = []
    dropped = 0
    for r in rows:
        scores = [_number(r[m]) for m in models]
        costs = [_number(r[f"{m}|total_cost"]) for m in models]
        if any(v is None for v in scores) or any(v is None or v < 0 for v in costs) \
                or _no_prompt(r["prompt"]):
            dropped += 1
            continue
        kept.append((r, scores, costs))  # type: ignore[arg-type]
    if dropped:
        log.warning("%s: %d of %d rows dropped (no prompt, or a model without a score or a "
                    "cost)", path, dropped, len(rows))
    if not kept:
        raise InvalidInputError(f"{path}: every row lacks some model's score or cost")
    kept = kept[:limit] if limit is not None else kept
    quality = np.array([s for _, s, _ in kept])
    cost = np.array([c for _, _, c in kept])
    outside = np.abs(quality - 0.5) > 0.5 + _SCORE_SLACK
    if outside.any():  # clipped, a 0-10 or 0-100 scale would look perfect everywhere
        i, j = (int(k) for k in np.argwhere(outside)[0])
        raise InvalidInputError(
            f"{path}: scores must be in [0, 1] ({models[j]} has {quality[i, j]:g} on row "
            f"{i + 1} of those kept; {int(outside.sum())} outside): rescale the table first")
    texts = [_prompt_text(r["prompt"]) for r, _, _ in kept]

    def out_tokens(r: dict[str, Any], m: str) -> float:
        response = r.get(f"{m}|model_response")
        if isinstance(response, list | tuple | np.ndarray) and len(response):
            response = _prompt_text(response)  # one answer per turn (as prompts take them)
        if isinstance(response, str) and response:
            return float(estimate_tokens(response))
        return 300.0  # not published: a typical answer length

    tokens = np.array([[out_tokens(r, m) for m in models] for r, _, _ in kept])
    ids = [str(r.get("sample_id", i)) for i, (r, _, _) in enumerate(kept)]
    return RoutingDataset(name=table_name(path.name), task_ids=ids, texts=texts,
                          models=models, quality=np.clip(quality, 0, 1), cost=cost,
                          latency=_latency(tokens), output_tokens=tokens,
                          input_tokens=np.array([estimate_tokens(t) for t in texts]),
                          groups=[str(r.get("eval_name", "")) for r, _, _ in kept],
                          dropped=dropped)


def load_table(path: str | Path, *, limit: int | None = None) -> RoutingDataset:
    """A routing table at ``path``, by what it holds: RouterBench's format (a pickle, or a
    CSV whose header has ``<model>|total_cost`` columns) or else your own log
    (:func:`load_log`); ``.gz`` files are read as gzipped text. :class:`InvalidInputError`
    when the file is missing or unreadable."""
    path = Path(path)
    if _is_pickle(path):
        return load_routerbench(path, limit=limit)
    try:
        with _open_text(path) as fh:
            head = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    if "|total_cost" in head:
        return load_routerbench(path, limit=limit)
    return load_log(path, limit=limit)


def load_log(path: str | Path, *, limit: int | None = None) -> RoutingDataset:
    """Your own logs: JSONL or CSV, one row per (task, model); see the module docstring."""
    path = Path(path)
    with _open_text(path) as fh:
        if ".jsonl" in path.name or ".json" in path.name:
            records = [json.loads(line) for line in fh if line.strip()]
        else:
            records = _csv_rows(fh)
    tasks: dict[str, str] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    models: list[str] = []
    for r in records:
        try:
            tid, model = str(r["task_id"]), str(r["model"])
            tasks.setdefault(tid, str(r["task"]))
            if model not in models:
                models.append(model)
            score, usd = _number(r["quality"]), _number(r["cost_usd"])
        except KeyError as exc:
            raise InvalidInputError(f"{path}: every row needs task_id, task, model, quality, "
                                    f"cost_usd (missing {exc})") from None
        if score is not None and usd is not None and usd >= 0:  # else: no outcome
            cells[(tid, model)] = {**r, "quality": score, "cost_usd": usd}
    ids = [t for t in tasks if all((t, m) in cells for m in models)]
    if not ids:
        raise InvalidInputError(f"{path}: no task has an outcome for every model")
    dropped = len(tasks) - len(ids)
    if dropped:
        log.warning("%s: %d of %d tasks dropped (some model has no outcome on them)", path,
                    dropped, len(tasks))
    ids = ids[:limit] if limit is not None else ids
    shape = (len(ids), len(models))
    quality, cost, tokens, latency = (np.zeros(shape) for _ in range(4))
    for i, t in enumerate(ids):
        for j, m in enumerate(models):
            r = cells[(t, m)]
            quality[i, j], cost[i, j] = r["quality"], r["cost_usd"]
            tok, lat = _number(r.get("output_tokens")), _number(r.get("latency_s"))
            tokens[i, j] = tok if tok is not None and tok >= 0 else 300.0
            latency[i, j] = (lat if lat is not None and lat >= 0
                             else float(_latency(np.array(tokens[i, j]))))
    texts = [tasks[t] for t in ids]
    return RoutingDataset(name=table_name(path.name), task_ids=ids, texts=texts,
                          models=models, quality=quality, cost=cost, latency=latency,
                          output_tokens=tokens,
                          input_tokens=np.array([estimate_tokens(t) for t in texts]),
                          dropped=dropped)


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

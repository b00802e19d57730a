"""The quality protocol: every workload it can find × a grid of cost weights × seeds.

One command (``bandit-router bench quality``) replays each workload through the real router
with the settings it ships (or the ones given), cold start and bandit feedback only, and
prints one table and writes JSON: for each workload and cost weight, the last half of the
stream's quality, its cost as a share of the strongest model's, its distance to the zero
router's hull (RouterBench's convex hull of the single models), the worst seed beside the
mean, the best fixed model's reward, rounds per second, and per workload the AIQ. Each
workload states its targets; the table says which are met.

Settings are chosen on the development seeds (:data:`DEV_SEEDS`) and reported on seeds fixed
in advance (:data:`REPORT_SEEDS`): a setting tuned on the seeds it is reported on proves
nothing.

The workloads:

- ``mmlu_pro`` — 10,225 MMLU-Pro questions × 13 priced chat models (shared data; the
  dataset's MiniLM vectors);
- ``routerdc7`` — a fixed sample of 6,000 RouterDC questions × 7 open 7–8B models across 10
  task families, read through :func:`~bandit_router.eval.datasets.load_routerbench` as a user's
  RouterBench-format table would be (shared data; embedded once by the router's embedder
  and cached);
- ``synthetic`` — the built-in simulated workload (no data needed);
- ``drift-quality`` and ``drift-price`` — the synthetic workload in which, halfway through,
  a model's quality drops or its price triples (announced as a live price update): it must
  lose its traffic within 1,000 rounds.

:func:`variant_workloads` adds shapes no default was chosen on (MMLU-Pro among 5 of its
models, among all 19 with a price and among all 31 at one price, RouterDC-7 with prices
spread by quality, short streams of both):
``bandit-router bench quality --variants``. :func:`table_workload` makes a workload of a
table of your own (a held-out benchmark, your logs), held to the same bar:
``bandit-router bench quality --table FILE``.

>>> [w.name for w in workloads(data_dir="/nonexistent")]
['synthetic', 'drift-quality', 'drift-price']
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..core._config import MAX_WEIGHT, PolicyConfig, RouterConfig, check_seed
from ..core._embedding import cache_dir
from ..core._errors import InvalidInputError
from ..core._objective import Objective
from .baselines import aiq
from .datasets import (
    RoutingDataset,
    default_data_dir,
    load_mmlu_pro,
    load_routerbench,
    load_table,
    mmlu_pro_models,
    mmlu_pro_prices,
    synthetic_dataset,
    table_name,
)
from .replay import Drift, ReplayResult, replay, zero_router_hull

__all__ = ["DEV_SEEDS", "HELD_OUT_BAR", "REPORT_SEEDS", "SHORT_STREAM", "VARIANT_DRAWS",
           "VARIANT_PAIRS", "VARIANT_WEIGHTS", "Target", "Workload", "cache_dir",
           "check_targets", "format_table", "load_json", "machine_facts", "render_markdown",
           "run_protocol", "settings_from", "table_workload", "variant_workloads",
           "with_embeddings", "workloads", "write_json"]

#: Seeds settings are chosen on.
DEV_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
#: Seeds results are reported on, fixed before any setting was chosen.
REPORT_SEEDS: tuple[int, ...] = (100, 101, 102)

#: How many RouterDC-7 questions the protocol replays (a fixed sample: the full 20,565 take
#: three times as long and tell the same story).
ROUTERDC7_SAMPLE = 6000


@dataclass(frozen=True, kw_only=True)
class Target:
    """A bar one workload must clear. ``kind``:

    - ``hull`` — at every cost weight, the mean distance above the zero router's hull is at
      least ``mean`` and the worst seed's at least ``worst``;
    - ``point`` — at some cost weight, the mean quality is at least ``quality`` at a mean
      cost of at most ``cost_share`` of the strongest model's;
    - ``quality`` — the mean quality at every weight is at least ``quality``;
    - ``drift`` — 1,000 to 1,500 rounds after the change, the changed model's traffic is at
      most ``share`` of what it was in the 1,000 rounds before it (mean and worst seed).
    """

    kind: Literal["hull", "point", "quality", "drift"]
    mean: float = 0.0
    worst: float = 0.0
    quality: float = 0.0
    cost_share: float = 1.0
    share: float = 0.25

    def __post_init__(self) -> None:
        if self.kind not in ("hull", "point", "quality", "drift"):
            raise InvalidInputError(f"unknown target kind {self.kind!r}")

    def describe(self) -> str:
        if self.kind == "hull":
            return f"vs hull >= {self.mean:+.3f} mean, >= {self.worst:+.3f} worst seed"
        if self.kind == "point":
            return f"quality >= {self.quality:.3f} at <= {100 * self.cost_share:.0f}% cost"
        if self.kind == "quality":
            return f"quality >= {self.quality:.3f}"
        return f"traffic after drift <= {100 * self.share:.0f}% of before"


@dataclass(frozen=True, kw_only=True)
class Workload:
    """A data set to replay, the cost weights to replay it at, what it must reach."""

    name: str
    description: str
    load: Callable[[], RoutingDataset]
    cost_weights: tuple[float, ...]
    targets: tuple[Target, ...] = ()
    drift: Drift | None = None
    needs_embedding: bool = False


def _synthetic(n: int) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        return replace(synthetic_dataset(n, seed=7), name="synthetic")
    return load


def _routerdc7(path: Path) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        ds = load_routerbench(path)
        rows = np.sort(np.random.default_rng(0).permutation(len(ds))[:ROUTERDC7_SAMPLE])
        return ds.subset(rows)
    return load


def workloads(*, data_dir: str | Path | None = None) -> list[Workload]:
    """Every workload whose data is present (the synthetic ones always are)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    found: list[Workload] = []
    mmlu = root / "mmlu_pro"
    if (mmlu / "prompts.jsonl.gz").exists():
        found.append(Workload(
            name="mmlu_pro", cost_weights=(5, 10, 20, 30, 50),
            description="MMLU-Pro, 10,225 questions x 13 priced chat models",
            load=lambda: load_mmlu_pro(mmlu),
            targets=(Target(kind="hull", mean=0.005, worst=-0.005),
                     Target(kind="point", quality=0.717, cost_share=0.10))))
    rdc = root / "routerdc7" / "routerdc7.csv.gz"
    if rdc.exists():
        found.append(Workload(
            name="routerdc7", cost_weights=(20,), needs_embedding=True,
            description=f"RouterDC, {ROUTERDC7_SAMPLE:,} questions x 7 open models, "
                        "10 task families",
            load=_routerdc7(rdc),
            targets=(Target(kind="quality", quality=0.515),
                     Target(kind="hull", mean=0.0, worst=0.0))))
    found.append(Workload(
        name="synthetic", cost_weights=(20, 50), needs_embedding=True,
        description="built-in simulated workload, 3,000 tasks x 5 models",
        load=_synthetic(3000), targets=(Target(kind="hull", mean=0.005, worst=-0.005),)))
    found.append(Workload(
        name="drift-quality", cost_weights=(30,), needs_embedding=True,
        description="synthetic, 4,000 tasks; at round 2,000 opencode/coder's quality "
                    "drops by 0.4",
        load=_synthetic(4000),
        drift=Drift(model="opencode/coder", at=2000, quality_delta=-0.4),
        targets=(Target(kind="drift", share=0.25),)))
    found.append(Workload(
        name="drift-price", cost_weights=(30,), needs_embedding=True,
        description="synthetic, 4,000 tasks; at round 2,000 frontier/large's price "
                    "triples (a live price update)",
        load=_synthetic(4000),
        drift=Drift(model="frontier/large", at=2000, price_factor=3.0),
        targets=(Target(kind="drift", share=0.25),)))
    return found


#: The draws of :func:`variant_workloads`' MMLU-Pro model subsets (fixed when they were
#: first run, after the defaults were chosen; none was re-drawn).
VARIANT_DRAWS: tuple[int, ...] = (11, 12, 13, 14)
#: The cost weights every variant shape is replayed at: a weight where quality leads, one
#: where cost does, and 100 (a RouterBench weight) where the cheapest models take most of it.
VARIANT_WEIGHTS: tuple[float, ...] = (10, 30, 100)
#: The bar of every shape no default was chosen on (the variants, a table of your own): on
#: or above the zero router's hull at every cost weight on average, no seed more than 0.005
#: under it.
HELD_OUT_BAR: tuple[Target, ...] = (Target(kind="hull", mean=0.0, worst=-0.005),)


#: Two-model shapes of :func:`variant_workloads` (RouteLLM's setting: a strong model and a
#: cheaper one, routed per request), fixed before their first run on the report seeds:
#: RouteLLM's own pairing (a frontier model against Mixtral-8x7B) and two near models.
VARIANT_PAIRS: dict[str, tuple[str, str]] = {
    "mmlu_pro-pair-4o-mixtral": ("gpt-4o-2024-05-13", "Mixtral-8x7B-Instruct-v0.1"),
    "mmlu_pro-pair-pro-70b": ("gemini-1.5-pro-002", "Meta-Llama-3.1-70B-Instruct"),
}


def _pair(path: Path, name: str) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        return load_mmlu_pro(path).with_models(list(VARIANT_PAIRS[name]), name=name)
    return load


def _models_drawn(path: Path, k: int, draw: int) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        ds = load_mmlu_pro(path)
        cols = np.sort(np.random.default_rng(draw).choice(len(ds.models), k, replace=False))
        return ds.with_models([ds.models[j] for j in cols], name=f"mmlu_pro-{k}of13-{draw}")
    return load


def _priced_by_rank(path: Path) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        ds = _routerdc7(path)()
        rank = np.argsort(np.argsort(ds.quality.mean(axis=0)))  # 0: the weakest on average
        return replace(ds, name="routerdc7-priced", cost=ds.cost * (2.0 ** rank)[None, :])
    return load


def _every_priced_model(path: Path) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        return replace(load_mmlu_pro(path, models=list(mmlu_pro_prices(path))),
                       name="mmlu_pro-19priced")
    return load


#: What every model costs in the many-model variant, USD per million tokens (RouterDC-7's
#: modelled price): the cost weight barely matters there, as in benchmarks without prices.
ONE_PRICE = 0.2


def _every_model(path: Path) -> Callable[[], RoutingDataset]:
    def load() -> RoutingDataset:
        models = mmlu_pro_models(path)
        return replace(load_mmlu_pro(path, models=models, price_per_mtok=ONE_PRICE),
                       name=f"mmlu_pro-{len(models)}")
    return load


#: How many tasks the short-stream variants replay (their last half: rounds 1,000-2,000).
SHORT_STREAM = 2000


def _short(load: Callable[[], RoutingDataset], name: str) -> Callable[[], RoutingDataset]:
    def short() -> RoutingDataset:
        ds = load()
        rows = np.sort(np.random.default_rng(0).permutation(len(ds))[:SHORT_STREAM])
        return replace(ds.subset(rows), name=name)
    return short


def variant_workloads(*, data_dir: str | Path | None = None) -> list[Workload]:
    """Workloads of shapes no default was chosen on, built from the same data: MMLU-Pro
    routed among 5 of its 13 models (four fixed draws: other candidates, other hulls),
    between two of them (:data:`VARIANT_PAIRS`: RouteLLM's strong-or-cheap setting) and
    among all 19 of its models with a price (six base models join: more arms, most weak) and
    among all 31 at one modelled price (many arms, as in a benchmark without prices),
    RouterDC-7 with prices that double with each model's rank in quality (1x to 64x, as
    between a 7B and a frontier model: the specialists now cost different amounts), and
    short streams of both (:data:`SHORT_STREAM` tasks: the last half is what the router
    does after its first thousand). A stand-in for the held-out public benchmarks a router
    meets; the bar is theirs: on or above the zero router's hull at every weight (mean), a
    seed at most 0.005 under it."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    bar = HELD_OUT_BAR
    found: list[Workload] = []
    mmlu = root / "mmlu_pro"
    if (mmlu / "prompts.jsonl.gz").exists():
        found += [Workload(name=f"mmlu_pro-5of13-{draw}", cost_weights=VARIANT_WEIGHTS,
                           description=f"MMLU-Pro, 5 of the 13 models (draw {draw})",
                           load=_models_drawn(mmlu, 5, draw), targets=bar)
                  for draw in VARIANT_DRAWS]
        found += [Workload(name=name, cost_weights=VARIANT_WEIGHTS,
                           description=f"MMLU-Pro, two models: {strong} or {cheaper}",
                           load=_pair(mmlu, name), targets=bar)
                  for name, (strong, cheaper) in VARIANT_PAIRS.items()]
        found.append(Workload(
            name="mmlu_pro-19priced", cost_weights=VARIANT_WEIGHTS,
            description="MMLU-Pro among every model with a price: the 13 chat models and 6 "
                        "base models (more arms, most of them weak)",
            load=_every_priced_model(mmlu), targets=bar))
        found.append(Workload(
            name="mmlu_pro-31", cost_weights=VARIANT_WEIGHTS,
            description="MMLU-Pro among all 31 of its models at one modelled price (the 12 "
                        "without a public price join: many arms, a benchmark without prices)",
            load=_every_model(mmlu), targets=bar))
        found.append(Workload(
            name=f"mmlu_pro-{SHORT_STREAM}", cost_weights=VARIANT_WEIGHTS,
            description=f"MMLU-Pro, a sample of {SHORT_STREAM:,} questions",
            load=_short(lambda: load_mmlu_pro(mmlu), f"mmlu_pro-{SHORT_STREAM}"),
            targets=bar))
    rdc = root / "routerdc7" / "routerdc7.csv.gz"
    if rdc.exists():
        found.append(Workload(
            name="routerdc7-priced", cost_weights=VARIANT_WEIGHTS, needs_embedding=True,
            description="RouterDC-7, prices 1x-64x by quality rank", load=_priced_by_rank(rdc),
            targets=bar))
        found.append(Workload(
            name=f"routerdc7-priced-{SHORT_STREAM}", cost_weights=VARIANT_WEIGHTS,
            needs_embedding=True,
            description=f"RouterDC-7 priced 1x-64x, a sample of {SHORT_STREAM:,} questions",
            load=_short(_priced_by_rank(rdc), f"routerdc7-priced-{SHORT_STREAM}"),
            targets=bar))
    return found


def table_workload(path: str | Path, *, name: str | None = None,
                   cost_weights: Sequence[float] = VARIANT_WEIGHTS) -> Workload:
    """A routing table of your own as a workload: a RouterBench table (a pickle, ``.csv`` or
    ``.csv.gz``) or a log with every model's outcome on each task, read by
    :func:`~bandit_router.eval.datasets.load_table` (rows with a gap are dropped and
    counted), its tasks embedded once by the router's embedder and cached
    (:func:`with_embeddings`), replayed as every workload is (cold start, bandit feedback,
    a seeded order per seed, the last half judged) at ``cost_weights`` and held to
    :data:`HELD_OUT_BAR`. ``name`` is the file's name without its format's suffix unless
    given.
    :class:`InvalidInputError` when there is no file at ``path``; what it holds is read when
    the protocol runs.

    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "our_traffic.csv.gz"
    ...     _ = path.write_bytes(b"")  # (read when the protocol runs, not here)
    ...     w = table_workload(path)
    >>> w.name, w.cost_weights, [t.describe() for t in w.targets]
    ('our_traffic', (10.0, 30.0, 100.0), ['vs hull >= +0.000 mean, >= -0.005 worst seed'])
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no table at {path}")
    label = table_name(path.name) if name is None else name
    if not label or "/" in label or "\\" in label:
        raise InvalidInputError(f"{path}: a table's name must be a file name, not {label!r}")

    def load() -> RoutingDataset:
        return replace(load_table(path), name=label)

    return Workload(name=label, description=f"{path}: a table of your own",
                    load=load, cost_weights=tuple(float(w) for w in cost_weights),
                    targets=HELD_OUT_BAR, needs_embedding=True)


# -- settings ----------------------------------------------------------------------------------
def settings_from(assignments: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``["policy.gamma_scale=400", "router.neighbours=64"]`` → the overrides of
    :class:`PolicyConfig` and :class:`RouterConfig` fields (values parsed as JSON, else kept
    as text).

    >>> settings_from(["policy.gamma_scale=400", "router.task_clusters=[4, 16]"])
    ({'gamma_scale': 400}, {'task_clusters': (4, 16)})
    """
    policy: dict[str, Any] = {}
    router: dict[str, Any] = {}
    names = {"policy": {f.name for f in fields(PolicyConfig)},
             "router": {f.name for f in fields(RouterConfig)}}
    for item in assignments:
        target, _, rest = item.partition(".")
        name, eq, text = rest.partition("=")
        if target not in names or not eq or name not in names[target]:
            raise InvalidInputError(
                f"{item!r}: expected policy.<field>=<value> or router.<field>=<value> with a "
                f"field of PolicyConfig or RouterConfig")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(value, list):
            value = tuple(value)
        (policy if target == "policy" else router)[name] = value
    PolicyConfig(**policy)  # validate now, not in a worker
    RouterConfig(**router)
    return policy, router


# -- embeddings --------------------------------------------------------------------------------
def with_embeddings(dataset: RoutingDataset, *, embedder: Any = None,
                    cache: Path | None = None) -> RoutingDataset:
    """``dataset`` with its tasks embedded by the router's embedder (``DEFAULT_EMBEDDER`` by
    default), kept in ``cache`` under a hash of the texts and the embedder's name."""
    if embedder is None:
        from ..core._onnx import make_embedder

        embedder = make_embedder()
    digest = hashlib.sha256()
    digest.update(embedder.name.encode())
    for text in dataset.texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    path = (cache or cache_dir()) / f"{dataset.name}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        vectors = np.load(path)
        if vectors.shape[0] == len(dataset):
            return replace(dataset, embeddings=np.asarray(vectors, np.float32))
    vectors = np.asarray(embedder.embed(dataset.texts), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return replace(dataset, embeddings=vectors)


# -- one replay --------------------------------------------------------------------------------
#: The loaded data sets by workload name, set before worker processes fork so that they
#: inherit them instead of receiving a copy per job.
_LOADED: dict[str, tuple[Workload, RoutingDataset]] = {}


def _strongest(ds: RoutingDataset) -> int:
    return int(np.argmax(ds.quality.mean(axis=0)))


def machine_facts() -> dict[str, Any]:
    """Where a measurement ran: the CPU's model, its cores, the platform, Python and the
    time (UTC). A replay follows the machine in its last bits (sums in BLAS and FAISS take
    other paths on other CPUs, and a few near-ties early on decide where traffic settles),
    so a table says which machine it came from."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M")}


def _one_thread() -> None:
    """A worker's FAISS searches on one thread: with a replay per core, OpenMP's threads only
    fight each other (on 2 cores, 2 workers of 2 threads each ran 3x slower)."""
    import faiss

    faiss.omp_set_num_threads(1)


def _one(job: tuple[str, float, int, dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    name, lam, seed, policy_kw, router_kw = job
    workload, ds = _LOADED[name]
    result = replay(ds, seed=seed, cost_weight=lam, drift=workload.drift,
                    policy=PolicyConfig(**{"seed": seed, **policy_kw}),
                    config=RouterConfig(**router_kw))
    return _row(result, workload, lam)


def _row(result: ReplayResult, workload: Workload, lam: float) -> dict[str, Any]:
    ds, n = result.dataset, len(result.order)
    half = slice(n // 2, None)
    s = result.summary(half)
    strongest = _strongest(ds)
    rows = result.order[half]
    strongest_cost = float(ds.cost[rows, strongest].mean())
    fixed = {m: float(Objective(lam).reward(ds.quality[rows, j].mean(),
                                            ds.cost[rows, j].mean()))
             for j, m in enumerate(ds.models)}
    best_fixed = max(fixed, key=fixed.__getitem__)
    whole = result.summary()
    whole_strongest = float(ds.cost[:, strongest].mean())
    out: dict[str, Any] = {
        "workload": workload.name, "cost_weight": lam, "seed": result.seed, "rounds": n,
        "quality": s["router"]["quality"], "cost_usd": s["router"]["cost"],
        "cost_share": s["router"]["cost"] / strongest_cost if strongest_cost else None,
        "reward": s["router"]["reward"],
        "vs_hull": s["metrics"]["above_zero_router"],
        "best_fixed_model": best_fixed, "best_fixed_reward": fixed[best_fixed],
        "vs_best_fixed": s["router"]["reward"] - fixed[best_fixed],
        "bandit_quality": s["bandit without context"]["quality"],
        "bandit_vs_hull": s["metrics"]["bandit_without_context_above_zero_router"],
        "whole_quality": whole["router"]["quality"],
        # (a table without prices: no share of nothing)
        "whole_cost_share": (whole["router"]["cost"] / whole_strongest if whole_strongest
                             else None),
        "whole_vs_hull": whole["metrics"]["above_zero_router"],
        "rounds_per_s": result.rounds_per_s,
        "traffic": {m: result.share(m, half) for m in ds.models},
    }
    if workload.drift is not None:
        k0 = workload.drift.start(n)
        before = result.share(workload.drift.model, slice(max(0, k0 - 1000), k0))
        after = result.share(workload.drift.model, slice(k0 + 1000, k0 + 1500))
        out["drift"] = {"model": workload.drift.model, "share_before": before,
                        "share_after": after,
                        "ratio": after / before if before > 0 else None}
    return out


# -- the protocol ------------------------------------------------------------------------------
def run_protocol(chosen: Sequence[Workload], *, seeds: Sequence[int] = REPORT_SEEDS,
                 policy: Mapping[str, Any] | None = None,
                 router: Mapping[str, Any] | None = None,
                 cost_weights: Mapping[str, Sequence[float]] | None = None, jobs: int = 1,
                 embedder: Any = None,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Replay every workload at its cost weights (or ``cost_weights[name]``) and seeds with
    ``policy``/``router`` overrides of the shipped defaults; ``jobs`` replays at once in
    forked processes. Returns the JSON-ready result: every run, a summary per workload and
    weight, and each target checked."""
    if not chosen:
        raise InvalidInputError("no workload to run")
    if not seeds:
        raise InvalidInputError("no seed to run")
    if jobs < 1:
        raise InvalidInputError(f"jobs must be at least 1, not {jobs}")
    seeds = [check_seed(s) for s in seeds]
    names = [w.name for w in chosen]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # (each workload's data and summary are kept by its name)
        raise InvalidInputError(f"two workloads named {twice}")
    _check_grids(cost_weights or {}, names)
    policy_kw, router_kw = dict(policy or {}), dict(router or {})
    say = progress or (lambda _msg: None)
    grids = {w.name: tuple(float(x) for x in (cost_weights or {}).get(w.name, w.cost_weights))
             for w in chosen}
    for w in chosen:
        start = time.perf_counter()
        ds = w.load()
        embed = w.needs_embedding and ds.embeddings is None
        say(f"loaded {w.name}: {len(ds):,} tasks x {len(ds.models)} models "
            f"({time.perf_counter() - start:.1f} s)"
            + (f"; their vectors: embedded once, then read from {cache_dir()}"
               if embed else ""))
        if embed:
            ds = with_embeddings(ds, embedder=embedder)
        _LOADED[w.name] = (w, ds)
    work = [(w.name, lam, seed, policy_kw, router_kw) for w in chosen for lam in grids[w.name]
            for seed in seeds]
    say(f"{len(work)} replays, {jobs} at a time")
    start = time.perf_counter()
    try:
        if jobs > 1:
            with multiprocessing.get_context("fork").Pool(jobs, _one_thread) as pool:
                runs = pool.map(_one, work, chunksize=1)
        else:
            runs = [_one(job) for job in work]
        summaries = {w.name: _summarise(w, _LOADED[w.name][1],
                                        [r for r in runs if r["workload"] == w.name])
                     for w in chosen}
    finally:
        _LOADED.clear()
    result = {
        "protocol": "bandit-router bench quality", "version": 1,
        "seeds": list(seeds),
        "seed_set": ("report" if tuple(seeds) == REPORT_SEEDS
                     else "development" if set(seeds) <= set(DEV_SEEDS) else "other"),
        "settings": {"policy": _jsonable(PolicyConfig(**policy_kw)),
                     "router": _jsonable(RouterConfig(**router_kw)),
                     "overrides": {"policy": _jsonable(policy_kw),
                                   "router": _jsonable(router_kw)}},
        "seconds": time.perf_counter() - start, "machine": machine_facts(),
        "workloads": summaries, "runs": runs,
    }
    result["targets"] = check_targets(result)
    return result


def _check_grids(grids: Mapping[str, Sequence[float]], names: Sequence[str]) -> None:
    """:class:`InvalidInputError` unless each grid names a workload being run and holds one
    or more cost weights a router takes (before any replay starts, not in a worker)."""
    for name, grid in grids.items():
        if name not in names:
            raise InvalidInputError(f"cost weights given for {name!r}, which is not among the "
                                    f"workloads run ({', '.join(names)})")
        if not grid:
            raise InvalidInputError(f"no cost weight given for {name!r}")
        bad = [w for w in grid if not _router_takes(w)]
        if bad:
            raise InvalidInputError(f"cost weights must be in [0, {MAX_WEIGHT:g}]: {name!r} "
                                    f"has {', '.join(f'{w:g}' for w in bad)}")


def _router_takes(cost_weight: float) -> bool:
    """Whether a replay's router takes ``cost_weight`` (:class:`RouterConfig`'s own check)."""
    try:
        RouterConfig(cost_weight=cost_weight)
    except InvalidInputError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _summarise(w: Workload, ds: RoutingDataset, runs: list[dict[str, Any]]) -> dict[str, Any]:
    strongest = _strongest(ds)
    singles = list(zip(ds.cost.mean(axis=0).tolist(), ds.quality.mean(axis=0).tolist(),
                       strict=True))
    low, high = min(c for c, _ in singles), max(c for c, _ in singles)
    weights = sorted({r["cost_weight"] for r in runs})
    rows = []
    for lam in weights:
        mine = [r for r in runs if r["cost_weight"] == lam]

        def stat(key: str, rs: list[dict[str, Any]] = mine
                 ) -> tuple[float | None, float | None]:
            """Mean and lowest; none where no run has the figure (JSON's null, not NaN)."""
            values = [r[key] for r in rs if r.get(key) is not None]
            return (float(np.mean(values)), float(np.min(values))) if values else (None, None)

        row: dict[str, Any] = {"cost_weight": lam, "seeds": len(mine)}
        for key in ("quality", "cost_share", "vs_hull", "vs_best_fixed", "whole_quality",
                    "whole_cost_share", "whole_vs_hull", "rounds_per_s", "bandit_vs_hull"):
            row[key], row[f"{key}_worst"] = stat(key)
        row["quality_worst"] = float(min(r["quality"] for r in mine))
        shares = [r["cost_share"] for r in mine if r["cost_share"] is not None]
        row["cost_share_worst"] = float(max(shares)) if shares else None
        row["best_fixed_model"] = max({r["best_fixed_model"] for r in mine},
                                      key=[r["best_fixed_model"] for r in mine].count)
        row["per_seed"] = [{"seed": r["seed"], "quality": r["quality"],
                            "cost_share": r["cost_share"], "vs_hull": r["vs_hull"]}
                           for r in mine]
        if w.drift is not None:
            before = [r["drift"]["share_before"] for r in mine]
            after = [r["drift"]["share_after"] for r in mine]
            ratios = [r["drift"]["ratio"] if r["drift"]["ratio"] is not None else 0.0
                      for r in mine]
            row["drift"] = {"model": w.drift.model, "share_before": float(np.mean(before)),
                            "share_after": float(np.mean(after)),
                            "ratio": float(np.mean(ratios)), "ratio_worst": float(max(ratios))}
        rows.append(row)
    points = [(float(np.mean([r["cost_usd"] for r in runs if r["cost_weight"] == lam])),
               r_["quality"]) for lam, r_ in zip(weights, rows, strict=True)]
    zero = aiq(zero_router_hull(*zip(*singles, strict=True)), low=low, high=high)
    return {
        "description": w.description, "tasks": len(ds), "models": list(ds.models),
        "strongest": ds.models[strongest],
        "strongest_quality": float(ds.quality[:, strongest].mean()),
        "dropped_rows": ds.dropped,
        "targets": [{**_jsonable(t), "text": t.describe()} for t in w.targets],
        "rows": rows,
        "aiq": aiq(points, low=low, high=high) if len(points) > 1 else None,
        "aiq_zero_router": zero,
    }


def _beside(figure: float, target: float) -> str:
    """``figure`` to 4 decimals, or to 6 where 4 would round it up to a target it misses.

    >>> _beside(0.7169958, 0.717), _beside(0.7234, 0.717)
    ('0.716996', '0.7234')
    """
    shown = f"{figure:.4f}"
    return f"{figure:.6f}" if figure < target <= float(shown) else shown


def check_targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each workload's targets against its summary: what was asked, the figure, met or not."""
    checks: list[dict[str, Any]] = []
    names = {f.name for f in fields(Target)}
    for name, summary in result["workloads"].items():
        for spec in summary["targets"]:
            target = Target(**{k: v for k, v in spec.items() if k in names})
            rows = summary["rows"]
            if target.kind == "hull":
                mean = min(r["vs_hull"] for r in rows)
                worst = min(r["vs_hull_worst"] for r in rows)
                met = mean >= target.mean and worst >= target.worst
                figure = f"lowest mean {mean:+.4f}, worst seed {worst:+.4f}"
            elif target.kind == "point":
                fits = [r for r in rows if r["cost_share"] is not None
                        and r["cost_share"] <= target.cost_share]
                best = max(fits, key=lambda r: r["quality"]) if fits else None
                met = best is not None and best["quality"] >= target.quality
                figure = (f"{_beside(best['quality'], target.quality)} at "
                          f"{100 * best['cost_share']:.1f}% (weight {best['cost_weight']:g})"
                          if best is not None else "no weight under the cost")
            elif target.kind == "quality":
                low = min(r["quality"] for r in rows)
                met = low >= target.quality
                figure = _beside(low, target.quality)
            else:
                worst_ratio = max(r["drift"]["ratio_worst"] for r in rows)
                met = worst_ratio <= target.share
                figure = (f"worst seed keeps {100 * worst_ratio:.0f}% of its traffic "
                          f"(mean {100 * max(r['drift']['ratio'] for r in rows):.0f}%)")
            checks.append({"workload": name, "target": target.describe(), "figure": figure,
                           "met": bool(met)})
    return checks


# -- output ------------------------------------------------------------------------------------
def format_table(result: Mapping[str, Any]) -> str:
    """The plain-text table printed by ``bandit-router bench quality``."""
    lines = [f"seeds {result['seeds']} ({result['seed_set']}); "
             f"overrides {result['settings']['overrides']}"]
    head = (f"{'workload':<14} {'λ/USD':>6} | {'quality':>7} {'worst':>6} {'% top $':>7} "
            f"{'vs hull':>8} {'worst':>7} {'vs fixed':>8} | {'whole q':>7} {'% top $':>7} "
            f"| {'bandit':>15} | {'rounds/s':>8}")
    lines += [head, "-" * len(head)]
    for name, s in result["workloads"].items():
        for r in s["rows"]:
            lines.append(
                f"{name:<14} {r['cost_weight']:>6g} | {r['quality']:>7.3f} "
                f"{r['quality_worst']:>6.3f} {_share(r['cost_share']):>7} "
                f"{r['vs_hull']:>+8.4f} {r['vs_hull_worst']:>+7.4f} "
                f"{r['vs_best_fixed']:>+8.4f} | {r['whole_quality']:>7.3f} "
                f"{_share(r['whole_cost_share']):>7} | {_bandit_cell(r):>15} "
                f"| {r['rounds_per_s']:>8.0f}"
                + (f"  drift: {r['drift']['model']} {100 * r['drift']['share_before']:.0f}% "
                   f"-> {100 * r['drift']['share_after']:.1f}%" if "drift" in r else ""))
        if s["aiq"] is not None:
            lines.append(f"{'':<14} AIQ {s['aiq']:.4f} (zero router {s['aiq_zero_router']:.4f}, "
                         f"{s['aiq'] - s['aiq_zero_router']:+.4f})")
    lines.append("")
    for c in result["targets"]:
        lines.append(f"{'met ' if c['met'] else 'MISS'} {c['workload']:<14} {c['target']}: "
                     f"{c['figure']}")
    return "\n".join(lines)


def _share(value: float | None) -> str:
    """A share of the strongest model's cost as a percentage; ``-`` where there is none
    (a table without prices).

    >>> _share(0.0871), _share(float("nan")), _share(None)
    ('8.7%', '-', '-')
    """
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _bandit_cell(row: Mapping[str, Any]) -> str:
    """The context-free bandit's distance to the hull (results written before it: blank)."""
    mean, worst = row.get("bandit_vs_hull"), row.get("bandit_vs_hull_worst")
    if mean is None or worst is None or math.isnan(mean):
        return ""
    return f"{mean:+.4f} ({worst:+.4f})"


def render_markdown(result: Mapping[str, Any]) -> str:
    """The README's table, made from the JSON the protocol wrote."""
    where = result.get("machine")  # (tables written before it was recorded have none)
    out = [f"Seeds {', '.join(map(str, result['seeds']))} ({result['seed_set']} seeds), "
           "last half of each stream, cold start, bandit feedback only"
           + (f"; measured on {where['cpu']}, {where['cpu_count']} cores, "
              f"{where['date_utc']} UTC." if where else "."),
           "",
           "| workload | cost weight | quality (worst seed) | % of strongest's cost | "
           "vs hull (worst seed) | vs best fixed model (drift: traffic moved) | "
           "AIQ (zero router) | bandit without context: vs hull (worst seed) | rounds/s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, s in result["workloads"].items():
        for k, r in enumerate(s["rows"]):
            aiq_cell = (f"{s['aiq']:.4f} ({s['aiq_zero_router']:.4f})"
                        if k == 0 and s["aiq"] is not None else "")
            # after a drift, no fixed model is the one to beat: the traffic moved is the figure
            fixed = (f"{r['drift']['model']}: {100 * r['drift']['share_before']:.0f}% of "
                     f"traffic before, {100 * r['drift']['share_after']:.1f}% 1,000 rounds "
                     "after" if "drift" in r else f"{r['vs_best_fixed']:+.4f}")
            out.append(
                f"| {name if k == 0 else ''} | {r['cost_weight']:g} | {r['quality']:.3f} "
                f"({r['quality_worst']:.3f}) | {_share(r['cost_share'])} | "
                f"{r['vs_hull']:+.4f} ({r['vs_hull_worst']:+.4f}) | "
                f"{fixed} | {aiq_cell} | {_bandit_cell(r)} | {r['rounds_per_s']:.0f} |")
    out += ["", "| workload | target | figure | met |", "|---|---|---|---|"]
    for c in result["targets"]:
        out.append(f"| {c['workload']} | {c['target']} | {c['figure']} | "
                   f"{'yes' if c['met'] else '**no**'} |")
    return "\n".join(out) + "\n"


def write_json(result: Mapping[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")


def load_json(path: str | Path) -> dict[str, Any]:
    """A result :func:`write_json` wrote, its targets checked again (by this release's
    rule: the runs are the measurement, the verdicts follow from them)."""
    data: dict[str, Any] = json.loads(Path(path).read_text())
    data["targets"] = check_targets(data)
    return data


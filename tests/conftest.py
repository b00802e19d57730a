"""Shared fixtures: real embedder (loaded once), databases, a controllable clock."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bandit_router import (
    DEFAULT_EMBEDDER,
    OnnxEmbedder,
    Router,
    RouterConfig,
    SentenceTransformerEmbedder,
    make_embedder,
)
from bandit_router.eval.simulation import HashEmbedder, demo_catalog

PG_ADMIN_URL = os.environ.get("BANDIT_ROUTER_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def load_script(path: str) -> ModuleType:
    """One of the repository's scripts (``scripts/bench_doc.py``...), loaded as a module."""
    file = Path(__file__).resolve().parents[1] / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_routerbench(path: Path, n: int, *, gaps: int = 0, priced: bool = True) -> None:
    """The synthetic workload's first ``n`` tasks as a RouterBench table (gzipped when the
    name says so), the first ``gaps`` rows without one model's score; every cost 0 unless
    ``priced`` (a benchmark without prices)."""
    import csv
    import gzip

    from bandit_router.eval.datasets import synthetic_dataset

    ds = synthetic_dataset(n, seed=3)
    with (gzip.open(path, "wt", newline="") if path.suffix == ".gz"
          else path.open("w", newline="")) as fh:
        out = csv.writer(fh)
        out.writerow(["sample_id", "prompt", "eval_name", *(
            col for m in ds.models for col in (m, f"{m}|total_cost"))])
        for i, text in enumerate(ds.texts):
            cells = [c for j in range(len(ds.models))
                     for c in ("" if i < gaps and j == 0 else f"{ds.quality[i, j]:.4f}",
                               f"{ds.cost[i, j]:.8f}" if priced else "0")]
            out.writerow([f"s{i}", text, ds.groups[i] if ds.groups else "", *cells])


def run_in_threads(work: Callable[[int], object], n: int) -> list[BaseException]:
    """``work(0)`` ... ``work(n - 1)``, each in a thread of its own, all at once; returns the
    errors they raised (none: ``[]``) once every thread has ended."""
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.fixture(scope="session")
def minilm() -> OnnxEmbedder:
    """The shipped default: all-MiniLM-L6-v2 by ONNX Runtime, float32 weights, the torch
    model's vectors (exported on first use)."""
    assert DEFAULT_EMBEDDER == "minilm"
    embedder = OnnxEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def minilm_int8() -> OnnxEmbedder:
    """The same model with int8 weights (``make_embedder("minilm-int8")``)."""
    embedder = make_embedder("minilm-int8")
    assert isinstance(embedder, OnnxEmbedder) and embedder.quantize
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def minilm_torch() -> SentenceTransformerEmbedder:
    """The same model through sentence-transformers and torch."""
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    return embedder


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'router.db'}"


#: what the ``make_router`` fixture gives: builds a router from Router's keyword arguments
MakeRouter = Callable[..., Router]


@pytest.fixture
def make_router(sqlite_url: str) -> Iterator[MakeRouter]:
    """Builds routers on one SQLite file, with the demo catalog and the hashing embedder
    unless told otherwise; closes them all at the end."""
    made: list[Router] = []

    def factory(**kwargs: Any) -> Router:
        kwargs.setdefault("database_url", sqlite_url)
        kwargs.setdefault("catalog", demo_catalog())
        kwargs.setdefault("embedder", HashEmbedder())
        kwargs.setdefault("config", RouterConfig(cost_weight=50.0))
        router = Router(**kwargs)
        made.append(router)
        return router

    yield factory
    for router in made:
        with contextlib.suppress(Exception):
            router.store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh database of each engine the router supports: a SQLite file, then a
    PostgreSQL database (:func:`pg_url`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"br_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()

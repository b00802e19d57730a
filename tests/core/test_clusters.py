"""Task clusters: the k-means codebooks (bandit_router.core._clusters) and how a real Router fits,
stores, shares and uses them (real VW, real SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from bandit_router import InvalidInputError, PolicyConfig, Router, RouterConfig
from bandit_router.core._clusters import TaskClusters
from bandit_router.core._store import ClusterRow, EventRow
from bandit_router.eval.datasets import synthetic_dataset


def _blobs(n: int, k: int, dim: int = 32, *, seed: int = 0,
           spread: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))
    labels = rng.integers(0, k, n)
    x = centres[labels] + spread * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def test_recovers_separated_clusters_exactly() -> None:
    x, labels = _blobs(600, 6)
    clusters = TaskClusters.fit(x, sizes=(6,), seed=0)
    found = np.array([clusters.assign(v)[0] for v in x])
    # the same partition: each true cluster maps to one found cluster and back
    pairs = set(zip(labels.tolist(), found.tolist(), strict=True))
    assert len(pairs) == 6 == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_fit_is_deterministic_for_a_seed_and_round_trips() -> None:
    x, _ = _blobs(500, 8, spread=0.6)
    a = TaskClusters.fit(x, sizes=(3, 8), seed=4)
    b = TaskClusters.fit(x, sizes=(3, 8), seed=4)
    assert a.sizes == (3, 8) and a.dim == 32
    assert all(np.array_equal(p, q) for p, q in zip(a.codebooks, b.codebooks, strict=True))
    c = TaskClusters.from_bytes(a.to_bytes())
    assert c.sizes == a.sizes and c.tag == a.tag  # same features in every process
    assert TaskClusters.fit(x, sizes=(3, 8), seed=5).tag != a.tag
    for v in x[:50]:
        assert c.features(v) == a.features(v)
        f = a.features(v)
        assert len(f) == 2 and set(f.values()) == {1.0}
        assert {name.split("_")[0] for name in f} == {"c3", "c8"}


def test_fit_needs_as_many_tasks_as_clusters() -> None:
    x, _ = _blobs(5, 2)
    with pytest.raises(ValueError, match="at least 16"):
        TaskClusters.fit(x, sizes=(16,), seed=0)
    with pytest.raises(ValueError):
        TaskClusters([])


@pytest.mark.parametrize("bad", [(1,), (4, 4), (2000,), [4, 16], (True,)])
def test_config_rejects_bad_cluster_sizes(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="task_clusters"):
        RouterConfig(task_clusters=bad)  # type: ignore[arg-type]


def test_config_rejects_fitting_before_there_are_enough_tasks() -> None:
    with pytest.raises(InvalidInputError, match="cluster_after"):
        RouterConfig(task_clusters=(4, 16), cluster_after=10)
    with pytest.raises(InvalidInputError, match="memory_size"):
        RouterConfig(memory_size=500)  # would never hold the 1,000 tasks to fit on
    assert RouterConfig(task_clusters=(), cluster_after=1).task_clusters == ()
    assert RouterConfig(task_clusters=(), memory_size=500).memory_size == 500


def _serve(router: Router, texts: list[str], start: int = 0) -> list[str]:
    """Select and reward each text (the synthetic workload repeats some: distinct here)."""
    ids = []
    for k, text in enumerate(texts):
        d = router.select(f"{text} (request {start + k})", event_id=f"e{start + k}")
        router.reward(d.event_id, quality=0.8, cost_usd=0.0001)
        ids.append(d.event_id)
    return ids


CONFIG = RouterConfig(cost_weight=50.0, task_clusters=(2, 4), cluster_after=24)


def test_router_fits_once_enough_tasks_are_rewarded_and_uses_them(
        make_router: Callable[..., Router]) -> None:
    ds = synthetic_dataset(40, seed=3)
    router = make_router(config=CONFIG)
    first = _serve(router, ds.texts[:23])
    assert router.get_routing_stats()["task_clusters"] is None  # not yet: 23 tasks
    first += _serve(router, ds.texts[23:24], start=23)
    assert router.get_routing_stats()["task_clusters"] is not None  # fitted after the 24th reward
    later = _serve(router, ds.texts[24:], start=24)
    with router.store.session() as s:
        contexts = {e.id: e.context for e in s.query(EventRow)}
        rows = s.query(ClusterRow).all()
    assert all("K" not in contexts[i] for i in first)
    clusters = router._learner.clusters
    for k, (i, text) in enumerate(zip(later, ds.texts[24:], strict=True)):
        emb = router.embedder.embed([f"{text} (request {24 + k})"])[0]
        assert contexts[i]["K"] == clusters.features(emb)  # what the policy saw is logged
    assert len(rows) == 1 and rows[0].tasks == 24 and rows[0].arm == ""
    assert router.get_routing_stats()["task_clusters"] == {"sizes": [2, 4],
                                                           "tag": clusters.tag}
    assert TaskClusters.from_bytes(rows[0].codebooks).sizes == (2, 4)


def test_a_replica_uses_the_stored_codebooks_not_its_own(
        make_router: Callable[..., Router]) -> None:
    ds = synthetic_dataset(60, seed=5)
    a = make_router(config=CONFIG)
    b = make_router(config=CONFIG)  # started before any codebook exists
    _serve(a, ds.texts[:24])
    assert a.get_routing_stats()["task_clusters"] is not None
    assert b.get_routing_stats()["task_clusters"] is None
    # b has learned other tasks than a's first 24 (it catches up on a's log too), but the
    # first writer's codebooks win
    _serve(b, ds.texts[30:60], start=100)
    assert b.get_routing_stats()["task_clusters"] is not None
    for x, y in zip(a._learner.clusters.codebooks, b._learner.clusters.codebooks, strict=True):
        assert np.array_equal(x, y)
    c = make_router(config=CONFIG)  # a restart loads them at once
    assert c.get_routing_stats()["task_clusters"] is not None
    assert c._learner.clusters.to_bytes() == a._learner.clusters.to_bytes()


def test_other_settings_get_their_own_codebooks_and_checkpoints(
        make_router: Callable[..., Router]) -> None:
    ds = synthetic_dataset(30, seed=2)
    a = make_router(config=CONFIG)
    _serve(a, ds.texts[:24])
    other = RouterConfig(cost_weight=50.0, task_clusters=(3,), cluster_after=24)
    b = make_router(config=other)  # (2, 4) codebooks do not serve (3,): b fits its own
    assert b.get_routing_stats()["task_clusters"]["sizes"] == [3]
    with b.store.session() as s:
        assert s.query(ClusterRow).count() == 2
    assert a._learner.config_hash() != b._learner.config_hash()
    off = make_router(config=RouterConfig(cost_weight=50.0, task_clusters=()))
    assert off.get_routing_stats()["task_clusters"] is None
    d = off.select(ds.texts[25], event_id="off-1")
    assert "K" not in off.store.get_event(d.event_id).context


def test_corrupt_codebooks_are_not_used(make_router: Callable[..., Router]) -> None:
    ds = synthetic_dataset(30, seed=2)
    a = make_router(config=CONFIG)
    _serve(a, ds.texts[:24])
    with a.store.session() as s:
        row = s.query(ClusterRow).one()
        row.codebooks = row.codebooks[:-8] + b"\x00" * 8
    b = make_router(config=CONFIG)
    assert b.get_routing_stats()["task_clusters"] is None


@pytest.mark.parametrize("precomputed", [True, False])
def test_labelled_warm_start_gets_clusters(make_router: Callable[..., Router],
                                           precomputed: bool) -> None:
    history = synthetic_dataset(40, seed=4)
    router = make_router(config=CONFIG)
    if precomputed:  # fitted on the whole history before any of it is learned
        history = replace(history, embeddings=router.embedder.embed(history.texts))
    router.warm_start(history, batch=5)
    assert router.get_routing_stats()["task_clusters"] is not None
    distinct = len(set(history.texts))
    with router.store.session() as s:
        stored = s.query(ClusterRow).one()
        k = [e.context.get("K") for e in s.query(EventRow).filter(EventRow.status == "history")
             .order_by(EventRow.created_at)]
    assert len(k) == 40 * 5
    if precomputed:
        assert stored.tasks == distinct and all(x is not None for x in k)
    else:  # the first 24 tasks repeat some (21 distinct): from the memory, once it holds
        # 24 distinct tasks (5 outcomes each)
        assert 24 <= stored.tasks < distinct and k[0] is None and k[-1] is not None


def test_labelled_warm_start_fits_its_clusters_ahead(
        make_router: Callable[..., Router]) -> None:
    """Without precomputed vectors, the first ``cluster_after`` tasks are embedded ahead and
    the codebooks fitted on them, so every history row is learned with its clusters."""
    history = synthetic_dataset(40, seed=4)  # its first 16 tasks are distinct
    router = make_router(config=RouterConfig(cost_weight=50.0, task_clusters=(2,),
                                             cluster_after=16))
    router.warm_start(history, batch=5)
    with router.store.session() as s:
        stored = s.query(ClusterRow).one()
        k = [e.context.get("K") for e in s.query(EventRow).filter(EventRow.status == "history")]
    assert stored.tasks == 16 and len(k) == 40 * 5 and all(x is not None for x in k)


def test_policy_learns_per_cluster_outcomes(make_router: Callable[..., Router]) -> None:
    """Two kinds of task, a different best model for each: with the clusters as its only
    task view (no embedding interaction), VW learns to route each kind to its model."""
    config = RouterConfig(cost_weight=0.0, task_clusters=(2,), cluster_after=20)
    router = make_router(config=config,
                         policy=PolicyConfig(seed=1, interactions=("KM",), gamma_scale=100))
    kinds = {"code": ("Write a Python function that parses {} files", "opencode/coder"),
             "prose": ("Summarise the history of {} in a short paragraph", "budget/tiny")}
    rng = np.random.default_rng(0)
    words = ["csv", "json", "rome", "jazz", "tea", "yaml", "chess", "rain", "ink", "salt"]
    chosen: dict[str, list[str]] = {"code": [], "prose": []}
    for k in range(600):
        kind = "code" if rng.random() < 0.5 else "prose"
        template, best = kinds[kind]
        d = router.select(template.format(words[k % 10]), event_id=f"t{k}")
        key = f"{d.provider}/{d.model}"
        router.reward(d.event_id, quality=0.9 if key == best else 0.2, cost_usd=0.0)
        if k >= 450:
            chosen[kind].append(key)
    assert router.get_routing_stats()["task_clusters"] is not None
    for kind, (_, best) in kinds.items():
        assert chosen[kind].count(best) / len(chosen[kind]) > 0.8, kind

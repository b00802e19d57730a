"""The replay engine: bandit feedback through the real router, baselines, metrics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bandit_router import InvalidInputError, Router
from bandit_router.eval.datasets import default_data_dir, load_mmlu_pro, synthetic_dataset
from bandit_router.eval.replay import (
    Drift,
    context_free_thompson,
    hull_quality,
    replay,
    zero_router_hull,
)
from bandit_router.eval.simulation import HashEmbedder


def test_zero_router_hull() -> None:
    # (cost, quality): c is dominated by b's mix with d, e costs more for no gain
    hull = zero_router_hull([0.0, 1.0, 2.0, 3.0, 4.0], [0.2, 0.6, 0.65, 0.9, 0.9])
    assert hull == [(0.0, 0.2), (1.0, 0.6), (3.0, 0.9)]
    assert hull_quality(hull, 2.0) == pytest.approx(0.75)
    assert hull_quality(hull, 10.0) == 0.9 and hull_quality(hull, -1) == 0.2
    # models at one cost: the best of them is the hull there, in whatever order they come
    for order in ([0.37, 0.49, 0.44], [0.49, 0.37, 0.44], [0.44, 0.37, 0.49]):
        tied = zero_router_hull([6.31e-05] * 3, order)
        assert tied == [(6.31e-05, 0.49)]
        assert hull_quality(tied, 6.31e-05) == hull_quality(tied, 6.30e-05) == 0.49
    assert zero_router_hull([0.0, 1.0, 1.0, 2.0], [0.3, 0.5, 0.7, 0.75]) == [
        (0.0, 0.3), (1.0, 0.7), (2.0, 0.75)]
    # one price summed in two orders: a hair apart is still one cost, judged by the best
    a, b = sum([0.1] * 10), 1.0  # 0.9999999999999999 and 1.0
    assert a != b
    for costs in ([a, b, 2.0], [b, a, 2.0]):
        near = zero_router_hull(costs, [0.5, 0.7, 0.75])
        assert [q for _, q in near] == [0.7, 0.75]
        assert hull_quality(near, min(a, b)) == 0.7
    assert len(zero_router_hull([1.0, 1.001], [0.5, 0.7])) == 2  # a real difference stays


def test_models_at_one_price_are_judged_against_the_best_of_them() -> None:
    """Every model at one cost per task (a benchmark without prices, or one price): the
    router's distance to the hull is its quality less the best single model's, whether its
    mean cost lands a hair under theirs or on it."""
    ds = synthetic_dataset(600, seed=4)
    ds = replace(ds, cost=np.repeat(ds.cost[:, :1], len(ds.models), axis=1))
    result = replay(ds, seed=0, cost_weight=20.0, embedder=HashEmbedder())
    s = result.summary(slice(300, None))
    best = max(s[f"always {m}"]["quality"] for m in ds.models)
    assert s["metrics"]["above_zero_router"] == pytest.approx(s["router"]["quality"] - best)
    assert s["metrics"]["zero_router_quality_at_same_cost"] == pytest.approx(best)


def test_replay_is_deterministic_and_beats_fixed_strategies() -> None:
    ds = synthetic_dataset(1500, seed=3)
    a = replay(ds, seed=1, cost_weight=50.0, embedder=HashEmbedder())
    b = replay(ds, seed=1, cost_weight=50.0, embedder=HashEmbedder())
    assert np.array_equal(a.order, b.order) and np.array_equal(a.chosen, b.chosen)
    s = a.summary(slice(750, None))
    assert s["metrics"]["rounds"] == 750
    for baseline in ("random", "cheapest", "strongest"):
        assert s["router"]["reward"] > s[baseline]["reward"] + 0.02, baseline
    assert s["oracle"]["reward"] >= s["router"]["reward"]
    assert s["metrics"]["regret_per_round"] == pytest.approx(
        s["oracle"]["reward"] - s["router"]["reward"], abs=1e-9)
    c = replay(ds, seed=2, cost_weight=50.0, embedder=HashEmbedder())
    assert not np.array_equal(a.order, c.order)


def test_context_free_thompson_settles_is_seeded_and_follows_a_drift() -> None:
    ds = synthetic_dataset(3000, seed=2)
    order = np.random.default_rng(0).permutation(len(ds))
    a = context_free_thompson(ds, order, seed=0, cost_weight=0.0)
    assert np.array_equal(a, context_free_thompson(ds, order, seed=0, cost_weight=0.0))
    assert not np.array_equal(a, context_free_thompson(ds, order, seed=1, cost_weight=0.0))
    best = int(np.argmax(ds.quality.mean(axis=0)))
    assert np.mean(a[1500:] == best) > 0.8  # without a cost, the best model on average
    # priced: it trades quality for the catalog's cost, and settles elsewhere
    priced = context_free_thompson(ds, order, seed=0, cost_weight=500.0)
    assert np.bincount(priced[1500:]).argmax() != best
    # the best model's quality drops to 0 halfway: its traffic goes within 1,000 rounds
    drift = Drift(model=ds.models[best], at=1500, quality_delta=-1.0)
    moved = context_free_thompson(ds, order, seed=0, cost_weight=0.0, drift=drift)
    assert np.mean(moved[2500:] == best) < 0.05
    assert np.array_equal(moved[:1500], a[:1500])


def test_summary_sets_a_bandit_without_context_beside_the_router() -> None:
    ds = synthetic_dataset(1200, seed=3)
    result = replay(ds, seed=1, cost_weight=50.0, embedder=HashEmbedder())
    s = result.summary(slice(600, None))
    bandit = s["bandit without context"]
    chosen = context_free_thompson(ds, result.order, seed=1, cost_weight=50.0)
    rows = result.order[600:]
    assert bandit["quality"] == pytest.approx(ds.quality[rows, chosen[600:]].mean())
    assert bandit["cost"] == pytest.approx(ds.cost[rows, chosen[600:]].mean())
    above = s["metrics"]["bandit_without_context_above_zero_router"]
    router_above = s["metrics"]["above_zero_router"]
    hull_at = s["metrics"]["zero_router_quality_at_same_cost"]
    assert router_above == pytest.approx(s["router"]["quality"] - hull_at)
    assert above < s["oracle"]["quality"]  # a figure against the same hull, not a copy
    assert result.context_free is result.context_free  # run once per result


def test_replay_log(tmp_path) -> None:
    ds = synthetic_dataset(40, seed=0)
    result = replay(ds, seed=0, cost_weight=10.0, embedder=HashEmbedder())
    result.write_log(tmp_path / "log.csv")
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert len(lines) == 41 and lines[0].startswith("round,task_id,model,probability")


@pytest.mark.slow
@pytest.mark.skipif(not (default_data_dir() / "mmlu_pro" / "prompts.jsonl.gz").exists(),
                    reason="shared MMLU-Pro data not present")
def test_mmlu_pro_slice_learns_to_save() -> None:
    ds = load_mmlu_pro(default_data_dir() / "mmlu_pro", limit=3000)
    result = replay(ds, seed=0, cost_weight=50.0)  # precomputed MiniLM vectors
    s = result.summary(slice(1500, None))
    gpt4o = s["always gpt-4o-2024-05-13"]
    assert s["router"]["cost"] < 0.15 * gpt4o["cost"]
    assert s["router"]["quality"] > s["random"]["quality"] + 0.08
    assert s["router"]["reward"] > gpt4o["reward"] + 0.1


def test_warm_start_from_labelled_history(tmp_path) -> None:
    from bandit_router import Router, RouterConfig
    from bandit_router.eval.simulation import demo_catalog

    ds = synthetic_dataset(600, seed=4)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    router = Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                    config=RouterConfig(cost_weight=50.0))
    learned = router.warm_start(ds.subset(range(300)))
    assert learned == 300 * len(ds.models) == router.policy_version
    stats = router.get_routing_stats()
    assert stats["decisions"] == 0  # history is not traffic
    probe = ds.subset(range(300, 600))
    best = [ds.models[int(np.argmax(ds.quality[i] - 50.0 * ds.cost[i]))]
            for i in range(300, 600)]
    picks = [router.select(t, event_id=f"p{i}") for i, t in enumerate(probe.texts)]
    hit = np.mean([f"{d.provider}/{d.model}" == b for d, b in zip(picks, best, strict=True)])
    assert hit > 0.4  # chance is 0.2: it knows before any live reward
    router.close()
    again = Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                   config=RouterConfig(cost_weight=50.0))
    assert again.policy_version == learned  # the history is part of the log
    again.close()


def test_replay_with_warm_start_beats_cold_start() -> None:
    ds = synthetic_dataset(1200, seed=5)
    cold = replay(ds, seed=0, cost_weight=50.0, embedder=HashEmbedder(), limit=600)
    warm = replay(ds, seed=0, cost_weight=50.0, embedder=HashEmbedder(), warm_start=0.5)
    assert len(warm.order) == 600
    assert warm.summary()["router"]["reward"] > cold.summary()["router"]["reward"] + 0.02


@pytest.mark.parametrize("share", [1.0, -0.5, float("nan"), 0.999])
def test_replay_refuses_a_warm_start_that_is_no_share_or_leaves_nothing(share: float) -> None:
    from bandit_router import InvalidInputError

    with pytest.raises(InvalidInputError, match="warm"):
        replay(synthetic_dataset(20, seed=1), embedder=HashEmbedder(), warm_start=share)


def test_replay_refuses_a_limit_of_no_task_and_a_negative_seed() -> None:
    from bandit_router import InvalidInputError

    with pytest.raises(InvalidInputError, match="limit must be at least 1"):
        replay(synthetic_dataset(20, seed=1), embedder=HashEmbedder(), limit=0)
    with pytest.raises(InvalidInputError, match="seed must be an integer"):
        replay(synthetic_dataset(20, seed=1), embedder=HashEmbedder(), seed=-1)


def test_baselines_and_aiq() -> None:
    from bandit_router.eval.baselines import aiq, knn_greedy, supervised

    ds = synthetic_dataset(1200, seed=6)
    emb = HashEmbedder().embed(ds.texts)
    ds = type(ds)(**{**ds.__dict__, "embeddings": emb})
    order, chosen = knn_greedy(ds, seed=0, cost_weight=50.0)
    q = ds.quality[order, chosen][600:].mean()
    assert q > ds.quality.mean() + 0.1  # it learns, without VW
    # its settings not given are the router's (one home for each)
    from bandit_router import RouterConfig

    config = RouterConfig()
    same = knn_greedy(ds, seed=0, cost_weight=50.0, k=config.neighbours,
                      prior_strength=config.prior_strength,
                      task_difficulty=config.task_difficulty)
    assert (same[1] == chosen).all()
    other = knn_greedy(ds, seed=0, cost_weight=50.0, prior_strength=50.0)
    assert (other[1] != chosen).any()
    train, test = np.arange(0, 900), np.arange(900, 1200)
    picks = supervised(ds, train, test, cost_weight=50.0)
    best = np.argmax(ds.quality[test] - 50.0 * ds.cost[test], axis=1)
    assert np.mean(picks == best) > 0.5
    line = [(0.0, 0.5), (1.0, 0.9)]
    assert aiq(line, low=0.0, high=1.0) == pytest.approx(0.7, abs=1e-3)
    assert aiq([(0.0, 0.6), (1.0, 0.9)], low=0.0, high=1.0) > aiq(line, low=0.0, high=1.0)


def test_drift_changes_outcomes_and_announces_the_price() -> None:
    from bandit_router.eval.replay import Drift

    ds = synthetic_dataset(600, seed=4)
    drift = Drift(model="frontier/large", at=300, quality_delta=-0.5, price_factor=3.0)
    result = replay(ds, seed=0, cost_weight=30.0, embedder=HashEmbedder(), drift=drift)
    j = ds.models.index("frontier/large")
    static_q = ds.quality[result.order, result.chosen]
    static_c = ds.cost[result.order, result.chosen]
    picked = result.chosen == j
    before, after = np.arange(600) < 300, np.arange(600) >= 300
    assert picked[before].any() and picked[after].any()
    assert np.allclose(result.quality[before], static_q[before])
    assert np.allclose(result.cost[after & picked], 3.0 * static_c[after & picked])
    assert np.allclose(result.quality[after & picked],
                       np.clip(static_q[after & picked] - 0.5, 0, 1))
    assert np.allclose(result.quality[after & ~picked], static_q[after & ~picked])
    assert result.share("frontier/large") == pytest.approx(picked.mean())
    assert Drift(model="m", at=0.25).start(1000) == 250


def test_announced_price_drift_reaches_the_router(monkeypatch: pytest.MonkeyPatch) -> None:
    from bandit_router import Router
    from bandit_router.eval.replay import Drift

    updates: list[tuple[str, dict[str, dict[str, float]]]] = []
    original = Router.update_pricing

    def spy(self: Router, provider: str, prices: dict[str, dict[str, float]]) -> None:
        updates.append((provider, prices))
        original(self, provider, prices)

    monkeypatch.setattr(Router, "update_pricing", spy)
    ds = synthetic_dataset(100, seed=4)
    spec = ds.catalog().get("frontier/large")
    replay(ds, seed=0, embedder=HashEmbedder(),
           drift=Drift(model="frontier/large", at=50, price_factor=3.0))
    assert updates == [("frontier", {"large": {
        "input_price_per_1m": 3 * spec.input_price_per_1m,
        "output_price_per_1m": 3 * spec.output_price_per_1m}})]
    updates.clear()
    replay(ds, seed=0, embedder=HashEmbedder(),
           drift=Drift(model="frontier/large", at=50, price_factor=3.0, announce=False))
    assert updates == []


def test_a_prompt_the_router_would_refuse_does_not_stop_a_replay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark's table may hold a prompt longer than the router takes, a NUL or a blank
    prompt: the replay sends what an app would (cut to ``max_task_chars``, NUL dropped) and
    skips a task with nothing to route, keeping the seeded order of the others."""
    ds = synthetic_dataset(400, seed=5)
    texts = list(ds.texts)
    texts[3] = "solve this " * 20_000  # 220,000 characters
    texts[4] = "a\x00b task"
    texts[5] = " \n "
    odd = replace(ds, texts=texts)
    sent: list[str] = []
    select = Router.select

    def spy(self: Router, task: str, **kw: object) -> object:
        sent.append(task)
        return select(self, task, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Router, "select", spy)
    result = replay(odd, seed=0, cost_weight=50.0, embedder=HashEmbedder())
    assert len(result.order) == 399 and 5 not in result.order.tolist()
    assert result.order.tolist() == [i for i in np.random.default_rng(0).permutation(400)
                                     if i != 5]
    by_task = dict(zip(result.order.tolist(), sent, strict=True))
    assert by_task[3] == texts[3][:100_000] and by_task[4] == "ab task"
    with pytest.raises(InvalidInputError, match="no task has any text to route"):
        replay(replace(ds, texts=[" "] * 400), seed=0, embedder=HashEmbedder())
    # a dataset whose texts are all routable replays exactly as before
    clean = replay(ds, seed=0, cost_weight=50.0, embedder=HashEmbedder())
    assert clean.order.tolist() == np.random.default_rng(0).permutation(400).tolist()

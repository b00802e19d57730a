"""The Router on a real SQLite file and real VW (hashing embedder for speed; the real
MiniLM path is covered in test_learning.py and test_cli.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import select, update

from bandit_router import (
    Constraints,
    DuplicateRewardError,
    InvalidInputError,
    InvalidRewardError,
    InvalidTaskError,
    NoEligibleModelError,
    PolicyConfig,
    RewardWindowClosedError,
    Router,
    RouterConfig,
    UnknownEventError,
    UnknownModelError,
    cost_report,
)
from bandit_router.core import _memory, _pages
from bandit_router.core._memory import Memory
from bandit_router.core._store import CheckpointRow, EventRow, MemoryPageRow, Store
from bandit_router.core.policies import VWPolicy
from bandit_router.eval.simulation import SyntheticWorkload
from tests.conftest import FakeClock, MakeRouter


def train(router: Router, n: int, *, seed: int = 0, cost_weight: float | None = None) -> None:
    wl = SyntheticWorkload(seed=seed)
    start = router.policy_version
    for i in range(n):
        task = wl.sample_task()
        d = router.select(task.text, cost_weight=cost_weight, event_id=f"train-{start + i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s,
                      output_tokens=o.output_tokens)


def probe_pmf(router: Router) -> list[float]:
    """The policy's distribution on a fixed request, without logging a decision."""
    emb = router.embedder.embed(["Translate 'good night' to German."])[0]
    specs = list(router.catalog)
    with router._lock:
        ests = router._learner.estimates(specs, emb, 12)
    from bandit_router.core._scoring import action_features

    acts = [action_features(s, e, cost_weight=50.0, latency_weight=0.0)
            for s, e in zip(specs, ests, strict=True)]
    return router.policy.pmf({"E": emb, "T": {"translate": 1.0}}, acts)


def test_select_returns_a_logged_decision(make_router: MakeRouter) -> None:
    router = make_router()
    d = router.select("Write a Python function that parses a CSV file.")
    assert f"{d.provider}/{d.model}" in router.catalog
    assert 0 < d.probability <= 1
    assert d.estimated_cost_usd > 0 and d.estimated_latency_s > 0
    assert 0 <= d.estimated_quality <= 1 and 0 <= d.confidence <= 1
    assert len(d.alternatives) == len(router.catalog) - 1
    probs = [a.probability for a in d.alternatives]
    assert probs == sorted(probs, reverse=True)
    assert d.probability + sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert d.model in d.reasoning and "probability" in d.reasoning
    row = router.store.get_event(d.event_id)
    assert row is not None and row.status == "pending"
    assert row.probability == pytest.approx(d.probability)
    assert row.model_key == f"{d.provider}/{d.model}" and row.task_text is None
    assert len(row.task_hash) == 64
    assert np.frombuffer(row.embedding, np.float32).shape == (router.embedder.dim,)
    assert d.to_dict()["event_id"] == d.event_id
    assert type(d).from_dict(d.to_dict()) == d


def test_task_text_is_stored_only_when_asked(make_router: MakeRouter) -> None:
    router = make_router(config=RouterConfig(store_task_text=True))
    d = router.select("keep me")
    row = router.store.get_event(d.event_id)
    assert row is not None and row.task_text == "keep me"


def test_reward_is_learned(make_router: MakeRouter) -> None:
    router = make_router()
    d = router.select("Tell me a fun fact about owls.")
    receipt = router.reward(d.event_id, quality=0.9, cost_usd=0.001, latency_s=0.5)
    assert receipt.policy_version == 1
    assert receipt.reward == pytest.approx(0.9 - 50.0 * 0.001)
    assert router.store.get_event(d.event_id).status == "rewarded"  # type: ignore[union-attr]
    assert router.get_routing_stats()["remembered_tasks"] == 1
    d2 = router.select("Tell me a fun fact about cats.")
    assert d2.policy_version == 1


def test_cost_from_tokens_and_error_rewards(make_router: MakeRouter) -> None:
    router = make_router()
    d = router.select("Translate 'thanks' to Dutch.")
    spec = router.catalog.find(d.provider, d.model)
    r = router.reward(d.event_id, quality=1.0, output_tokens=100)
    assert r.cost_usd == pytest.approx(spec.cost_usd(input_tokens=d.input_tokens,
                                                     output_tokens=100))
    d = router.select("Translate 'hello' to Dutch.")
    r = router.reward(d.event_id, error="rate_limit")
    assert r.quality == 0.0 and r.cost_usd == pytest.approx(d.estimated_cost_usd)
    # failures teach the policy, not the memory
    assert router.get_routing_stats()["remembered_tasks"] == 1
    assert router.policy_version == 2


@pytest.mark.parametrize("task", ["", "   \n", None, 42, "x" * 101])
def test_bad_tasks_are_refused(make_router: MakeRouter, task: object) -> None:
    router = make_router(config=RouterConfig(max_task_chars=100))
    with pytest.raises(InvalidTaskError):
        router.select(task)  # type: ignore[arg-type]
    assert router.store.count_events() == {}


def test_bad_request_options_are_refused(make_router: MakeRouter) -> None:
    router = make_router()
    for kwargs in ({"cost_weight": -1}, {"cost_weight": math.nan}, {"input_tokens": 0},
                   {"latency_weight": math.inf}, {"constraints": {"max_cost_usd": 1}}):
        with pytest.raises(InvalidTaskError):
            router.select("hello", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [
    {"quality": -0.1}, {"quality": 1.01}, {"quality": math.nan}, {"quality": math.inf},
    {"quality": "good"}, {"quality": True}, {}, {"quality": 0.5, "cost_usd": -0.01},
    {"quality": 0.5, "cost_usd": math.nan}, {"quality": 0.5, "latency_s": -1},
    {"quality": 0.5, "error": "melted"}, {"quality": 0.5, "output_tokens": -3},
])
def test_invalid_rewards_are_refused(make_router: MakeRouter, kwargs: dict) -> None:
    router = make_router()
    d = router.select("What is 2 + 2?")
    with pytest.raises(InvalidRewardError):
        router.reward(d.event_id, **kwargs)
    assert router.store.get_reward(d.event_id) is None
    router.reward(d.event_id, quality=1.0)  # still open for a valid reward


def test_unknown_and_duplicate_rewards(make_router: MakeRouter) -> None:
    router = make_router()
    with pytest.raises(UnknownEventError):
        router.reward("does-not-exist", quality=0.5)
    d = router.select("What is 2 + 2?")
    router.reward(d.event_id, quality=1.0)
    with pytest.raises(DuplicateRewardError):
        router.reward(d.event_id, quality=0.0)
    assert router.store.get_reward(d.event_id).quality == 1.0  # type: ignore[union-attr]
    assert router.policy_version == 1


def test_reward_wait_time_learns_the_default(make_router: MakeRouter, clock: FakeClock) -> None:
    router = make_router(clock=clock, config=RouterConfig(reward_wait_s=60, default_reward=-0.25))
    late = router.select("Summarize the meeting notes about remote work.")
    clock.advance(30)
    on_time = router.select("Summarize the report on renewable energy.")
    clock.advance(31)
    assert router.process_expired() == 1
    assert router.store.get_reward(late.event_id).reward == -0.25  # type: ignore[union-attr]
    assert router.store.get_event(late.event_id).status == "defaulted"  # type: ignore[union-attr]
    with pytest.raises(RewardWindowClosedError):
        router.reward(late.event_id, quality=1.0)
    router.reward(on_time.event_id, quality=1.0)
    assert router.policy_version == 2
    # a default reward is not a measurement
    assert router.get_routing_stats()["remembered_tasks"] == 1
    clock.advance(1000)
    unseen = router.select("Tell me a fun fact about dolphins.")
    clock.advance(61)
    with pytest.raises(RewardWindowClosedError):  # expired, even before any sweep ran
        router.reward(unseen.event_id, quality=1.0)
    assert router.store.get_event(unseen.event_id).status == "defaulted"  # type: ignore


def test_no_eligible_model_says_why_per_model(make_router: MakeRouter) -> None:
    router = make_router()
    with pytest.raises(NoEligibleModelError) as info:
        router.select("hello", constraints=Constraints(max_cost_usd=1e-9))
    assert set(info.value.reasons) == set(router.catalog.model_keys())
    assert all("max_cost_usd" in why for why in info.value.reasons.values())
    assert router.store.count_events() == {}


def test_constraints_are_respected_by_decisions(make_router: MakeRouter) -> None:
    router = make_router()
    for _ in range(20):
        d = router.select("Write a Rust function that caches results.",
                          constraints=Constraints(excluded_providers=["frontier"],
                                                  max_latency_s=5.0))
        assert d.provider != "frontier" and d.estimated_latency_s <= 5.0
        assert all(a.provider != "frontier" for a in d.alternatives)
        d = router.select("hello", constraints=Constraints(preferred_providers=["budget"]))
        assert d.provider == "budget" and "preferred" in d.reasoning


def test_price_update_applies_now_and_survives_restart(make_router: MakeRouter) -> None:
    router = make_router()
    before = router.select("Translate 'thanks' to Dutch.",
                           constraints=Constraints(allowed_models=["polyglot"]))
    router.update_pricing("openlang", {"polyglot": {"input_price_per_1m": 2.0,
                                                    "output_price_per_1m": 6.0}})
    after = router.select("Translate 'thanks' to Dutch.",
                          constraints=Constraints(allowed_models=["polyglot"]))
    assert after.estimated_cost_usd == pytest.approx(10 * before.estimated_cost_usd, rel=1e-6)
    with pytest.raises(UnknownModelError):
        router.update_pricing("openlang", {"nope": {"input_price_per_1m": 1.0}})
    with pytest.raises(InvalidTaskError.__mro__[1]):  # InvalidInputError (CatalogError)
        router.update_pricing("openlang", {"polyglot": {"price": 1.0}})
    router.close()
    reopened = make_router()
    assert reopened.catalog.find("openlang", "polyglot").output_price_per_1m == 6.0


def test_price_change_shifts_traffic_without_retraining(make_router: MakeRouter) -> None:
    router = make_router()
    train(router, 1500)
    wl = SyntheticWorkload(seed=99)
    tasks = [t for t in wl.tasks(400) if t.topic == "translation"][:40]

    def shares(tag: str) -> dict[str, float]:
        # named events: the exploration draws, hence the shares, are the same on every run
        picks = [router.select(t.text, event_id=f"{tag}-{i}") for i, t in enumerate(tasks)]
        return {k: sum(f"{d.provider}/{d.model}" == k for d in picks) / len(picks)
                for k in router.catalog.model_keys()}

    before = shares("before")
    leader = max(before, key=before.__getitem__)
    provider, model = leader.split("/")
    spec = router.catalog.get(leader)
    learned = router.policy_version
    router.update_pricing(provider, {model: {
        "input_price_per_1m": 1000 * spec.input_price_per_1m + 1.0,
        "output_price_per_1m": 1000 * spec.output_price_per_1m + 1.0}})
    after = shares("after")
    assert router.policy_version == learned  # nothing was relearned
    assert before[leader] >= 0.4
    assert after[leader] < before[leader] - 0.3


def test_cost_weight_per_request_moves_the_decision(make_router: MakeRouter) -> None:
    router = make_router()
    rng = np.random.default_rng(0)
    wl = SyntheticWorkload(seed=1)
    for i in range(2000):  # train across many cost weights (named events: reproducible)
        task = wl.sample_task()
        lam = float(rng.choice([0.0, 10.0, 50.0, 200.0, 1000.0]))
        d = router.select(task.text, cost_weight=lam, event_id=f"cw-train-{i}")
        o = wl.outcome(task, f"{d.provider}/{d.model}")
        router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd)
    maths = [t for t in SyntheticWorkload(seed=7).tasks(300) if t.topic == "maths"][:30]
    free = [router.select(t.text, cost_weight=0.0, event_id=f"free-{i}")
            for i, t in enumerate(maths)]
    dear = [router.select(t.text, cost_weight=1000.0, event_id=f"dear-{i}")
            for i, t in enumerate(maths)]
    mean_cost = lambda ds: float(np.mean([d.estimated_cost_usd for d in ds]))  # noqa: E731
    assert sum(d.model == "large" for d in free) > 0.6 * len(free)
    assert mean_cost(dear) < 0.3 * mean_cost(free)


def test_restart_accepts_rewards_for_old_events(make_router: MakeRouter) -> None:
    first = make_router()
    train(first, 50)
    pending = first.select("Explain the difference between a lease and a licence.")
    first.close()
    second = make_router()
    assert second.policy_version == 50
    receipt = second.reward(pending.event_id, quality=0.8, cost_usd=0.002)
    assert receipt.policy_version == 51


def test_restart_restores_the_policy_exactly(make_router: MakeRouter) -> None:
    first = make_router()
    train(first, 200)
    expected = probe_pmf(first)
    first.close()
    second = make_router()
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)


@pytest.mark.parametrize("strength", [0.0, 10.0])
def test_restart_restores_an_optimistic_policy_exactly(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture, strength: float) -> None:
    """With ``optimism`` the policy's counts and squareCB's ``t`` are in the checkpoint, and a
    rebuild from the log (no checkpoint) counts them again the same; with
    ``baseline_strength`` too, the counts weighing each model's baseline."""
    policy = PolicyConfig(exploration="squarecb",
                          seed=3, gamma_scale=100, optimism=0.3, baseline_strength=strength)
    first = make_router(policy=policy, config=RouterConfig(cost_weight=50.0,
                                                          checkpoint_every=10_000))
    # the baseline is the neighbours' estimate less the cost and latency terms
    assert isinstance(first.policy, VWPolicy)
    assert sorted(first.policy.baseline) == [("A", "cost", -1.0), ("A", "latency", -1.0),
                                             ("A", "quality", 1.0)]
    train(first, 120)
    expected = probe_pmf(first)
    first.close()  # writes its checkpoint
    with caplog.at_level("INFO", logger="bandit_router"):
        second = make_router(policy=policy)
    assert "restored checkpoint" in caplog.text  # not relearned from the log
    assert second.policy_version == 120
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)
    second.close()
    with second.store.session() as s:
        for row in s.scalars(select(CheckpointRow)):
            s.delete(row)
    third = make_router(policy=policy)
    assert np.allclose(probe_pmf(third), expected, atol=1e-6)


def test_a_checkpoint_serves_any_baseline_strength(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """``baseline_strength`` changes decisions only: a checkpoint written without it is
    loaded with it (nothing is relearned), and the restored policy weighs its baselines."""
    plain = PolicyConfig(exploration="squarecb", seed=3, gamma_scale=100, optimism=0.3)
    first = make_router(policy=plain, config=RouterConfig(cost_weight=50.0,
                                                         checkpoint_every=10_000))
    train(first, 120)
    unweighed = probe_pmf(first)
    first.close()
    with caplog.at_level("INFO", logger="bandit_router"):
        second = make_router(policy=replace(plain, baseline_strength=10.0))
    assert "restored checkpoint" in caplog.text and "other settings" not in caplog.text
    assert second.policy_version == 120
    assert not np.allclose(probe_pmf(second), unweighed, atol=1e-3)


def test_a_policy_crossing_the_neighbours_estimate_restarts_exactly(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """``Q`` (the neighbours' estimate, for ``QM``) carries ``A``'s quality and evidence, and a
    policy that crosses it comes back the same from its checkpoint and from the log, also
    from events logged before ``Q`` existed (their ``Q`` is filled from ``A``)."""
    from bandit_router.core._scoring import action_features

    policy = PolicyConfig(exploration="squarecb",
                          seed=2, optimism=0.2, gamma_scale=100, interactions=("EM", "QM"))
    first = make_router(policy=policy, config=RouterConfig(cost_weight=50.0,
                                                          checkpoint_every=10_000))
    train(first, 150)
    spec = next(iter(first.catalog))
    est = first._learner.estimates([spec], first.embedder.embed(["x"])[0], 12)[0]
    action = action_features(spec, est, cost_weight=50.0, latency_weight=0.0)
    assert action["Q"] == {"quality": action["A"]["quality"],
                           "evidence": action["A"]["evidence"]}
    expected = probe_pmf(first)
    first.close()
    with caplog.at_level("INFO", logger="bandit_router"):
        restored = make_router(policy=policy)
    assert "restored checkpoint" in caplog.text
    assert np.allclose(probe_pmf(restored), expected, atol=1e-6)

    def without_checkpoints(*, strip_q: bool = False) -> None:
        with first.store.session() as s:
            for row in s.scalars(select(CheckpointRow)):
                s.delete(row)
            if strip_q:  # as an event logged before Q existed
                for event in s.scalars(select(EventRow)):
                    event.actions = [{**a, "features": {ns: v for ns, v in a["features"].items()
                                                        if ns != "Q"}} for a in event.actions]

    without_checkpoints()
    assert np.allclose(probe_pmf(make_router(policy=policy)), expected, atol=1e-6)
    without_checkpoints(strip_q=True)
    with first.store.session() as s:
        assert all("Q" not in a["features"] for e in s.scalars(select(EventRow))
                   for a in e.actions)
    assert np.allclose(probe_pmf(make_router(policy=policy)), expected, atol=1e-6)


def test_crash_without_checkpoint_replays_the_log(make_router: MakeRouter) -> None:
    first = make_router(config=RouterConfig(cost_weight=50.0, checkpoint_every=80))
    train(first, 200)  # checkpoints at 80 and 160; 40 rewards only in the log
    expected = probe_pmf(first)
    first.store.close()  # a crash: no close(), no final checkpoint
    second = make_router(config=RouterConfig(cost_weight=50.0, checkpoint_every=80))
    assert second.policy_version == 200
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)


def test_a_torn_newest_checkpoint_falls_back_to_the_previous_one_plus_the_log(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """Killed while writing a checkpoint (its bytes torn): the next start loads the previous
    good checkpoint and learns the log after it, not the whole log."""
    config = RouterConfig(cost_weight=50.0, checkpoint_every=80)
    first = make_router(config=config)
    train(first, 200)  # checkpoints at 80 and 160, the two kept
    expected = probe_pmf(first)
    first.store.close()  # a crash: no final checkpoint
    with first.store.session() as s:
        newest, older = s.scalars(select(CheckpointRow).order_by(CheckpointRow.id.desc()))
        assert (newest.learned, older.learned) == (160, 80)
        newest.policy = newest.policy[: len(newest.policy) // 2]
        older_id = older.id
    with caplog.at_level("INFO", logger="bandit_router"):
        second = make_router(config=config)
    assert "corrupt" in caplog.text and f"restored checkpoint {older_id} " in caplog.text
    assert "rebuilding" not in caplog.text
    assert second.policy_version == 200
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)


@pytest.mark.parametrize("damage", ["bytes", "delete", "garbage-with-valid-sum"])
def test_corrupt_or_missing_checkpoint_is_rebuilt_from_the_log(
        make_router: MakeRouter, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    first = make_router()
    train(first, 150)
    expected = probe_pmf(first)
    first.close()
    with first.store.session() as s:
        if damage == "delete":
            for row in s.scalars(select(CheckpointRow)):
                s.delete(row)
        elif damage == "bytes":
            s.execute(update(CheckpointRow).values(policy=b"\x00broken"))
        else:
            import hashlib

            blob = b"garbage" * 20
            s.execute(update(CheckpointRow).values(
                policy=blob, sha256=hashlib.sha256(blob + b"").hexdigest(), memory=b""))
    with caplog.at_level("WARNING", logger="bandit_router"):
        second = make_router()
    assert "rebuilding the policy from the event log" in caplog.text
    assert second.policy_version == 150
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)
    d = second.select("Translate 'yes' to Italian.")
    second.reward(d.event_id, quality=1.0)


def test_changed_policy_settings_relearn_from_the_log(make_router: MakeRouter) -> None:
    first = make_router()
    train(first, 100)
    first.close()
    second = make_router(policy=PolicyConfig(exploration="epsilon", epsilon=0.1))
    assert second.policy_version == 100
    assert second.get_routing_stats()["remembered_tasks"] == 100


def test_two_routers_on_one_database_share_the_log(make_router: MakeRouter) -> None:
    a, b = make_router(), make_router()
    d = a.select("Is a verbal contract binding in France?")
    b.reward(d.event_id, quality=0.7)
    with pytest.raises(DuplicateRewardError):
        a.reward(d.event_id, quality=0.1)
    assert a.sync() == 1 and a.policy_version == 1
    assert np.allclose(probe_pmf(a), probe_pmf(b), atol=1e-6)


def test_routing_stats_and_route_alias(make_router: MakeRouter) -> None:
    router = make_router()
    train(router, 300)
    provider, model = router.route("Hi! How are you doing today?")
    assert f"{provider}/{model}" in router.catalog
    stats = router.get_routing_stats()
    assert stats["decisions"] == 301 and stats["rewarded"] == 300 and stats["pending"] == 1
    assert stats["policy_version"] == 300
    assert stats["reference_model"] == "frontier/large"
    assert sum(m["decisions"] for m in stats["models"]) == 301
    assert stats["spend_usd"] == pytest.approx(
        sum(m["spend_usd"] for m in stats["models"]))
    assert 0 < stats["spend_usd"] < stats["reference_spend_usd"]
    assert stats["cost_saved_usd"] == pytest.approx(
        stats["reference_spend_usd"] - stats["spend_usd"])
    assert 0.5 < stats["quality_kept"] < 1.2
    assert stats["reference_quality_source"] in {"measured", "prior"}


def test_routing_stats_since_count_only_the_decisions_made_since(
        make_router: MakeRouter, clock: FakeClock) -> None:
    router = make_router(clock=clock)
    train(router, 40)
    clock.advance(3600)
    since = clock()
    train(router, 25, seed=1)
    router.select("What is the capital of Peru?")  # pending
    window, whole = router.get_routing_stats(since=since), router.get_routing_stats()
    assert whole["decisions"] == 66 and whole["rewarded"] == 65 and whole["since"] is None
    assert window["decisions"] == 26 and window["rewarded"] == 25 and window["pending"] == 1
    assert window["since"] == since
    assert sum(m["decisions"] for m in window["models"]) == 26
    assert window["spend_usd"] < whole["spend_usd"]
    assert window["policy_version"] == whole["policy_version"] == 65  # the learner's, whole
    assert router.get_routing_stats(since=clock() + 1)["decisions"] == 0
    assert router.get_routing_stats(since=np.int64(int(since)))["decisions"] == 26
    # the same rule as the cost report's period: Unix seconds from 1970 to 9999
    for bad in (float("nan"), "yesterday", True, -1.0, 1e12):
        with pytest.raises(InvalidInputError, match="since must be Unix seconds"):
            router.get_routing_stats(since=bad)  # type: ignore[arg-type]


def test_routing_stats_since_read_the_decisions_by_their_time(make_router: MakeRouter) -> None:
    """A window is read through the index on the decisions' time, not the whole log (a
    dashboard asks every few seconds): every statement the statistics run is planned so."""
    from sqlalchemy import event

    router = make_router()  # (a SQLite file)
    train(router, 5)
    seen: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object,
                context: object, executemany: bool) -> None:
        if "br_events" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(router.store.engine, "before_cursor_execute", capture)
    try:
        router.get_routing_stats(since=0.0)
    finally:
        event.remove(router.store.engine, "before_cursor_execute", capture)
    assert len(seen) == 3  # decisions by model, rewarded by model, decisions by status
    with router.store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for statement, parameters in seen:
            plan = " ".join(str(row[-1]) for row in raw.execute(
                "EXPLAIN QUERY PLAN " + statement, parameters))
            assert "ix_br_events_created_at" in plan, (statement, plan)


def test_events_hold_what_replay_needs(make_router: MakeRouter) -> None:
    router = make_router()
    d = router.select("Solve for x: 3x + 2 = 11.", cost_weight=12.5,
                      constraints=Constraints(max_latency_s=9), metadata={"user": "u1"})
    with router.store.session() as s:
        row = s.get(EventRow, d.event_id)
        assert row is not None
        assert row.cost_weight == 12.5 and row.constraints == {"max_latency_s": 9}
        assert row.meta == {"user": "u1"} and row.pmf[row.chosen] == pytest.approx(d.probability)
        chosen = row.actions[row.chosen]
        assert chosen["key"] == f"{d.provider}/{d.model}"
        assert chosen["features"]["A"]["cost"] == pytest.approx(12.5 * d.estimated_cost_usd)


def test_caller_named_events_make_decisions_reproducible(tmp_path) -> None:
    from bandit_router.eval.simulation import HashEmbedder, demo_catalog

    def run(name: str) -> list[str]:
        router = Router(database_url=f"sqlite:///{tmp_path / name}", catalog=demo_catalog(),
                        embedder=HashEmbedder(), config=RouterConfig(cost_weight=50.0))
        train(router, 200, seed=5)
        picks = [router.select(t.text, event_id=f"probe-{i}").model
                 for i, t in enumerate(SyntheticWorkload(seed=6).tasks(50))]
        router.close()
        return picks

    assert run("a.db") == run("b.db")


def test_event_ids_are_unique(make_router: MakeRouter) -> None:
    from bandit_router import DuplicateEventError

    router = make_router()
    router.select("hello", event_id="order-42")
    with pytest.raises(DuplicateEventError):
        router.select("hello again", event_id="order-42")
    for bad in ("", " ", "x" * 200, "a\x00b"):
        with pytest.raises(InvalidTaskError):
            router.select("hello", event_id=bad)


def test_a_large_memory_searches_an_ivf_and_a_restart_keeps_it(make_router: MakeRouter) -> None:
    config = RouterConfig(cost_weight=50.0, exact_recall_limit=1024, checkpoint_every=1000,
                          task_clusters=())
    first = make_router(config=config)
    train(first, 1100)
    memory = first._learner.memory
    assert not memory.exact and len(memory) == 1100
    expected = probe_pmf(first)
    first.store.close()  # a crash: the checkpoint at 1000 (still exact), the rest in the log
    second = make_router(config=config)  # relearning passes 1024: the same centroids
    restored = second._learner.memory
    assert second.policy_version == 1100 and not restored.exact
    assert np.array_equal(restored._centroids, memory._centroids)
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)


def test_per_model_neighbours_reach_the_estimates(make_router: MakeRouter) -> None:
    pooled = make_router(config=RouterConfig(cost_weight=50.0, neighbours=64))
    train(pooled, 120)
    own = make_router(config=RouterConfig(cost_weight=50.0, neighbours=64,
                                          per_model_neighbours=2))
    assert own.policy_version == 120  # the same log, relearned
    emb = own.embedder.embed(["Translate 'good night' to German."])[0]
    specs = list(own.catalog)
    strength = own.config.prior_strength
    with own._lock:
        mine = [e.evidence for e in own._learner.estimates(specs, emb, 12)]
    with pooled._lock:
        theirs = [e.evidence for e in pooled._learner.estimates(specs, emb, 12)]
    assert max(mine) == pytest.approx(2 / (2 + strength))  # at most two outcomes a model
    assert max(theirs) > 2 / (2 + strength)  # pooled: one model holds many of the 64
    assert sum(e > 0 for e in mine) >= sum(e > 0 for e in theirs)


def test_checkpoints_leave_the_memory_vectors_in_the_log(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """A checkpoint's memory holds each row's outcome and reward seq, not its embedding (the
    event keeps it): a restore reads the vectors back and predicts exactly as before. A
    checkpoint written with the vectors (earlier releases) still loads; one whose rewards
    are not in the log is passed over for the log itself."""
    import hashlib

    config = RouterConfig(cost_weight=50.0, checkpoint_every=100)
    first = make_router(config=config)
    train(first, 250)
    expected, memory = probe_pmf(first), first._learner.memory
    first.store.close()  # a crash: checkpoints at 100 and 200, 50 rewards only in the log
    with first.store.session() as s:
        newest = s.scalars(select(CheckpointRow).order_by(CheckpointRow.id.desc())).first()
        assert newest is not None and newest.learned == 200
        assert len(newest.memory) < 200 * memory.dim * 4 // 4  # no vectors inside
        old_memory, policy = newest.memory, newest.policy
    with caplog.at_level("INFO", logger="bandit_router"):
        second = make_router(config=config)
    assert "restored checkpoint" in caplog.text and "rebuilding" not in caplog.text
    assert second.policy_version == 250
    assert np.array_equal(second._learner.memory.vectors(), memory.vectors())
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)
    second.store.close()

    def rewrite(blob: bytes) -> None:
        with first.store.session() as s:
            s.execute(update(CheckpointRow).values(
                memory=blob, policy=policy, sha256=hashlib.sha256(policy + blob).hexdigest()))

    restored = Memory.from_bytes(old_memory, dim=memory.dim, capacity=config.memory_size,
                                 fetch=lambda q: first.store.embeddings(q, dim=memory.dim))
    rewrite(restored.to_bytes())  # with the vectors, as earlier releases wrote them
    caplog.clear()
    with caplog.at_level("INFO", logger="bandit_router"):
        third = make_router(config=config)
    assert "restored checkpoint" in caplog.text and "rebuilding" not in caplog.text
    assert np.allclose(probe_pmf(third), expected, atol=1e-6)
    third.store.close()

    restored._cols["seq"] += 10_000  # rewards the log does not hold
    rewrite(restored.to_bytes(vectors=False))
    caplog.clear()
    with caplog.at_level("INFO", logger="bandit_router"):
        fourth = make_router(config=config)
    assert "not in the log" in caplog.text and "rebuilding the policy" in caplog.text
    assert fourth.policy_version == 250
    assert np.allclose(probe_pmf(fourth), expected, atol=1e-6)


def test_a_compact_memory_restarts_from_its_sealed_pages_and_the_log_after_them(
        make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A compact memory's checkpoint seals the codes of every whole page of rows; a restart
    files them and reads only the rows after the last page from the log (a damaged page's
    too), into the same memory: code for code, the same decisions."""
    monkeypatch.setattr(_memory, "COMPACT_FROM", 1000)  # compact at a size a test can fill
    monkeypatch.setattr(_pages, "PAGE_ROWS", 700)
    config = RouterConfig(cost_weight=50.0, memory_size=3000, exact_recall_limit=1024,
                          checkpoint_every=100)
    first = make_router(config=config)
    train(first, 2900)  # moved to its lists at 2,560 rows; then checkpoints at 2,600 (pages
    # 1 and 2: two a checkpoint at most), 2,700 (page 3) and 2,800 (page 4)
    memory = first._learner.memory
    assert memory.compact and memory.code_key is not None and len(memory) == 2900
    expected = probe_pmf(first)
    first.close()
    pages = first.store.memory_pages("", memory.code_key)
    assert [(a, b) for _, a, b in pages] == [(1 + 700 * i, 700 * (i + 1)) for i in range(4)]

    read: list[int] = []
    embeddings = Store.embeddings

    def counted(self: Store, seqs: np.ndarray, *, dim: int, chunk: int = 500) -> np.ndarray:
        read.extend(int(q) for q in seqs)
        return embeddings(self, seqs, dim=dim, chunk=chunk)

    monkeypatch.setattr(Store, "embeddings", counted)
    rows = np.arange(2900, dtype=np.int64)
    with caplog.at_level("INFO", logger="bandit_router"):
        second = make_router(config=config)
    assert "restored checkpoint" in caplog.text
    assert read == list(range(2801, 2901))
    assert np.array_equal(second._learner.memory.codes(rows), memory.codes(rows))
    assert np.allclose(probe_pmf(second), expected, atol=1e-6)
    second.close()

    with second.store.session() as s:
        s.execute(update(MemoryPageRow).where(MemoryPageRow.first_seq == 701)
                  .values(data=b"damaged"))
    read.clear()
    caplog.clear()
    with caplog.at_level("INFO", logger="bandit_router"):
        third = make_router(config=config)
    assert "does not load" in caplog.text and "restored checkpoint" in caplog.text
    assert read == [*range(701, 1401), *range(2801, 2901)]
    assert np.array_equal(third._learner.memory.codes(rows), memory.codes(rows))
    third.close()


def test_restart_restores_thompson_sampling_exactly(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """Thompson sampling's posterior per cluster and model, and its stacker, are in the
    checkpoint; a rebuild from the log (no checkpoint) learns them again the same."""
    policy = PolicyConfig(seed=3, exploration="thompson")
    config = RouterConfig(cost_weight=50.0, checkpoint_every=10_000, task_clusters=(4,),
                          cluster_after=60)
    first = make_router(policy=policy, config=config)
    assert isinstance(first.policy, VWPolicy)
    assert first.policy.groups == ("K",) and first.policy.learned_range == (0.0, 1.0)
    assert first.policy.evidence == ("A", "evidence", config.prior_strength)
    train(first, 200)
    # the posterior has cluster levels
    assert first.get_routing_stats()["task_clusters"] is not None

    def probe(router: Router) -> list[float]:
        emb = router.embedder.embed(["Translate 'good night' to German."])[0]
        specs = list(router.catalog)
        with router._lock:
            ests = router._learner.estimates(specs, emb, 12)
            context = {"E": emb, **router._learner.task_context(emb, {"translate": 1.0})}
        from bandit_router.core._scoring import action_features

        acts = [action_features(s, e, cost_weight=50.0, latency_weight=0.0)
                for s, e in zip(specs, ests, strict=True)]
        assert "K" in context
        return router.policy.pmf(context, acts, draw=0.5)

    expected = probe(first)
    first.close()
    with caplog.at_level("INFO", logger="bandit_router"):
        second = make_router(policy=policy, config=config)
    assert "restored checkpoint" in caplog.text
    assert second.policy_version == 200
    assert probe(second) == expected
    second.close()
    with second.store.session() as s:
        for row in s.scalars(select(CheckpointRow)):
            s.delete(row)
    third = make_router(policy=policy, config=config)
    assert third.policy_version == 200
    assert probe(third) == expected
    # the spread is a decision-only setting: a checkpoint serves another one
    caplog.clear()
    third.close()
    with caplog.at_level("INFO", logger="bandit_router"):
        wider = make_router(policy=replace(policy, thompson_scale=2.0), config=config)
    assert "restored checkpoint" in caplog.text and "other settings" not in caplog.text
    assert probe(wider) != expected


def test_an_observation_now_and_the_quality_later_are_learned_once(
        make_router: MakeRouter) -> None:
    """A partial reward: the gateway records cost, latency and tokens when the call ends;
    the quality comes later and the reward uses the observed figures for what it omits."""
    router = make_router()
    d = router.select("Summarise this memo")
    router.observe(d.event_id, cost_usd=0.0042, latency_s=1.5, output_tokens=321, ttft_s=0.2)
    router.observe(d.event_id, cost_usd=0.004, latency_s=1.25, output_tokens=300)  # replaces
    assert router.policy_version == 0  # nothing learned from an observation
    receipt = router.reward(d.event_id, quality=0.8)
    assert (receipt.cost_usd, receipt.latency_s) == (0.004, 1.25)
    assert router.get_event(d.event_id).reward["output_tokens"] == 300  # type: ignore[index]
    assert router.policy_version == 1
    with pytest.raises(DuplicateRewardError):
        router.observe(d.event_id, cost_usd=0.1)
    other = router.select("Summarise this memo again")
    router.observe(other.event_id, cost_usd=0.5)
    assert router.reward(other.event_id, quality=1.0, cost_usd=0.001).cost_usd == 0.001
    with pytest.raises(UnknownEventError):
        router.observe("no-such-event", cost_usd=0.1)
    with pytest.raises(InvalidRewardError):
        router.observe(other.event_id, latency_s=-1.0)


def _router_spend(router: Router) -> tuple[float, float]:
    """(spent, reserved) of the router's day budget."""
    (day,) = [b for b in router.budget_status() if b.budget.window == "day"]
    return day.spent_usd, day.reserved_usd


def test_an_observed_call_counts_at_its_cost_before_its_quality(
        make_router: MakeRouter, db_url: str) -> None:
    """The gateway's calls are spent when they end: budgets and cost reports count the
    observed cost, not the estimate, and the quality that comes later does not count the
    call again (nor does a second observation)."""
    router = make_router(database_url=db_url)
    router.set_budget(daily_limit=100.0)
    router.set_load_balancing("least_latency", providers=[
        {"id": "only", "model": "budget/tiny", "provider": "host"}])
    tiny = Constraints(allowed_models=frozenset({"budget/tiny"}))
    d = router.select("Summarise this memo", constraints=tiny)
    spent, reserved = _router_spend(router)
    assert spent == 0.0 and reserved == pytest.approx(d.estimated_cost_usd)
    assert {s.id: s for s in router.deployment_status()}["only"].in_flight == 1
    router.observe(d.event_id, cost_usd=0.25, latency_s=2.0)
    assert _router_spend(router) == pytest.approx((0.25, 0.0))
    health = {s.id: s for s in router.deployment_status()}["only"]
    assert (health.in_flight, health.ewma_latency_s) == (0, 2.0)  # the call has ended
    report = cost_report(router, group_by=())
    assert (report.total.pending, report.total.reported_usd,
            report.total.estimated_usd) == (1, pytest.approx(0.25), 0.0)
    router.observe(d.event_id, cost_usd=0.3, latency_s=2.0)  # replaces: counted once
    assert _router_spend(router) == pytest.approx((0.3, 0.0))
    router.reward(d.event_id, quality=0.9)
    assert _router_spend(router) == pytest.approx((0.3, 0.0))
    assert {s.id: s for s in router.deployment_status()}["only"].ewma_latency_s == 2.0
    # a reward that says another cost has the last word, still counted once
    e = router.select("Summarise this memo again", constraints=tiny)
    router.observe(e.event_id, cost_usd=0.5)
    router.reward(e.event_id, quality=1.0, cost_usd=0.125)
    assert _router_spend(router) == pytest.approx((0.425, 0.0))
    assert cost_report(router, group_by=()).total.spend_usd == pytest.approx(0.425)
    # observed without a cost: the estimate stays reserved until the reward says the cost;
    # the balancer hears the call once, when it ended (not again with the reward's latency)
    f = router.select("Summarise this memo a third time", constraints=tiny)
    router.observe(f.event_id, latency_s=3.0)
    assert _router_spend(router) == pytest.approx((0.425, f.estimated_cost_usd))
    heard = {s.id: s for s in router.deployment_status()}["only"].ewma_latency_s
    router.reward(f.event_id, quality=1.0, cost_usd=0.01, latency_s=5.0)
    assert _router_spend(router) == pytest.approx((0.435, 0.0))
    assert {s.id: s for s in router.deployment_status()}["only"].ewma_latency_s == heard


def test_the_default_reward_keeps_what_was_observed(make_router: MakeRouter,
                                                    clock: FakeClock) -> None:
    """A call observed but never given its quality: the default reward is learned, with
    the observed cost, latency and tokens in its row and its spend left at that cost."""
    router = make_router(clock=clock, config=RouterConfig(reward_wait_s=60, default_reward=0.0))
    router.set_budget(daily_limit=100.0)
    seen = router.select("Translate this paragraph into French.")
    unseen = router.select("Translate this paragraph into German.")
    router.observe(seen.event_id, cost_usd=0.02, latency_s=0.75, output_tokens=120)
    clock.advance(61)
    assert router.process_expired() == 2
    kept = router.store.get_reward(seen.event_id)
    assert kept is not None and kept.is_default
    assert (kept.cost_usd, kept.latency_s, kept.output_tokens) == (0.02, 0.75, 120)
    assert kept.reward == 0.0
    blank = router.store.get_reward(unseen.event_id)
    assert blank is not None and (blank.cost_usd, blank.latency_s) == (0.0, None)
    # the unseen call's reservation stays its spend; the seen one counts at its cost
    assert _router_spend(router) == pytest.approx((0.02, unseen.estimated_cost_usd))
    report = cost_report(router, group_by=())
    assert report.total.defaulted == 2
    assert report.total.reported_usd == pytest.approx(0.02)
    assert report.total.estimated_usd == pytest.approx(unseen.estimated_cost_usd)
    with pytest.raises(RewardWindowClosedError):
        router.observe(seen.event_id, cost_usd=0.1)
    assert router.policy_version == 2


def test_the_task_difficulty_reaches_the_estimates(make_router: MakeRouter) -> None:
    """Off by default; set, a router's estimates move by the task's difficulty, and only the
    quality moves (the neighbours' evidence stays)."""
    assert not RouterConfig().task_difficulty
    router = make_router(config=RouterConfig(cost_weight=50.0, task_difficulty=True))
    train(router, 120)
    specs = list(router.catalog)
    texts = ["Translate 'good night' to German.", "Prove that sqrt(2) is irrational.",
             "Write a haiku about rain.", "def add(a, b): return a + b  # fix the bug"]
    moved = 0
    for emb in router.embedder.embed(texts):
        with router._lock:
            on = router._learner.estimates(specs, emb, 12)
            router._learner.config = replace(router.config, task_difficulty=False)
            try:
                off = router._learner.estimates(specs, emb, 12)
            finally:
                router._learner.config = router.config
        assert [e.evidence for e in on] == [e.evidence for e in off]
        moved += any(abs(a.quality - b.quality) > 1e-9 for a, b in zip(on, off, strict=True))
    assert moved >= 1


def test_get_event_not_fresh_takes_a_decision_just_logged_without_a_read(
        make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    router = make_router()
    d = router.select("Translate 'good night' to German.", event_id="peek-1")
    fresh = router.get_event(d.event_id)

    def no_read(event_id: str) -> None:
        raise AssertionError(f"read {event_id}")

    with monkeypatch.context() as m:
        m.setattr(router.store, "get_event_and_reward", no_read)
        at_hand = router.get_event(d.event_id, fresh=False)
        with pytest.raises(AssertionError):  # the default always reads
            router.get_event(d.event_id)
        with pytest.raises(AssertionError):  # not logged here: read
            router.get_event("peek-unknown", fresh=False)
    assert at_hand.to_dict() == fresh.to_dict()
    assert at_hand.status == "pending" and at_hand.reward is None
    router.reward(d.event_id, quality=0.9)
    after = router.get_event(d.event_id, fresh=False)  # rewarded here: read again
    assert after.status == "rewarded" and after.reward is not None
    with pytest.raises(UnknownEventError):
        router.get_event("peek-unknown", fresh=False)


def test_sync_learns_its_own_unlearned_rewards_as_the_log_would(make_router: MakeRouter,
                                                                  tmp_path) -> None:
    """Rewards made durable with ``learn=False`` are learned by ``sync()`` from the rows in
    hand, not read back from the log: the same policy, memory and next decision as a router
    that read them back (its kept rows dropped), in batches as the service's learner takes
    them, across the clusters' fitting."""
    # No sweep on request, as the service runs: a sweep learns what is pending every 5 s of
    # the wall clock, which cut the two routers' batches at other rounds (a slow run failed
    # so); without it nothing the routers learn depends on the clock.
    config = RouterConfig(cost_weight=50.0, maintenance_on_request=False)
    routers = [make_router(database_url=f"sqlite:///{tmp_path / name}.db", config=config)
               for name in ("in_hand", "from_log")]
    read_back = []
    learn_log = routers[0].store.learn_log

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = learn_log(*args, **kwargs)
        read_back.extend(rows)
        return rows

    routers[0].store.learn_log = counted  # type: ignore[method-assign]
    for router in routers:
        wl = SyntheticWorkload(seed=3)
        for i in range(1100):
            task = wl.sample_task()
            d = router.select(task.text, event_id=f"e-{i}")
            o = wl.outcome(task, f"{d.provider}/{d.model}")
            router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd,
                          latency_s=o.latency_s, output_tokens=o.output_tokens, learn=False)
            if i % 100 == 99:
                if router is routers[1]:
                    router._learner._kept.clear()  # the log's way
                while router.sync(limit=64) == 64:
                    pass
    assert read_back == []  # nothing of its own read back
    assert routers[0].policy_version == routers[1].policy_version == 1100
    assert routers[0]._learner._kept == []
    a, b = (r._learner for r in routers)
    assert a.policy.to_bytes() == b.policy.to_bytes()
    assert a.memory.model_stats() == b.memory.model_stats()
    assert probe_pmf(routers[0]) == probe_pmf(routers[1])

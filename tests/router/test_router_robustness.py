"""Regressions from review: values that would poison the policy, restores that drift, inputs
that crashed with untyped errors, non-atomic price updates, threads."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from bandit_router import (
    CatalogError,
    Constraints,
    InvalidConstraintsError,
    InvalidRewardError,
    InvalidTaskError,
    PolicyConfig,
    Router,
    RouterConfig,
    UnknownEventError,
    UnknownModelError,
)
from bandit_router.eval.simulation import HashEmbedder, demo_catalog
from tests.conftest import MakeRouter

from .test_router import probe_pmf, train


@pytest.mark.parametrize("kwargs", [
    {"cost_usd": 1e308}, {"cost_usd": 2e4}, {"latency_s": 1e9}, {"output_tokens": 10**12},
])
def test_absurd_rewards_are_refused_and_do_not_poison(make_router: MakeRouter,
                                                      kwargs: dict) -> None:
    router = make_router()
    d = router.select("What is 2 + 2?")
    with pytest.raises(InvalidRewardError):
        router.reward(d.event_id, quality=0.5, **kwargs)
    assert all(math.isfinite(p) for p in probe_pmf(router))


def test_reward_value_out_of_range_is_refused(make_router: MakeRouter) -> None:
    router = make_router()
    d = router.select("What is 2 + 2?", cost_weight=1e6)
    with pytest.raises(InvalidRewardError, match="outside"):
        router.reward(d.event_id, quality=0.5, cost_usd=5.0)
    with pytest.raises(InvalidTaskError):
        router.select("hi", cost_weight=1e7)


def test_numpy_numbers_are_accepted(make_router: MakeRouter) -> None:
    router = make_router()
    d = router.select("Hello there", input_tokens=np.int64(12))
    r = router.reward(d.event_id, quality=np.float32(0.75), cost_usd=np.float64(0.001),
                      output_tokens=np.int32(40))
    assert r.quality == pytest.approx(0.75) and isinstance(r.quality, float)


@pytest.mark.parametrize("kwargs", [
    {"metadata": ["not", "a", "mapping"]}, {"metadata": {"x": object()}},
    {"metadata": {"x": float("nan")}}, {"metadata": {"x": "a\x00b"}},
    {"metadata": {"x": 2**64}},  # JSON, but no database column type holds it
    {"input_tokens": True},
])
def test_bad_select_options_are_typed_errors(make_router: MakeRouter, kwargs: dict) -> None:
    router = make_router()
    with pytest.raises(InvalidTaskError):
        router.select("hello", **kwargs)
    assert router.store.count_events() == {}


def test_nul_characters_and_huge_ids(make_router: MakeRouter) -> None:
    router = make_router()
    with pytest.raises(InvalidTaskError):
        router.select("a\x00b")
    for bad in ("a\x00b", "x" * 500, 42):
        with pytest.raises(UnknownEventError):
            router.reward(bad, quality=0.5)  # type: ignore[arg-type]


def test_constraint_names_must_exist(make_router: MakeRouter) -> None:
    router = make_router()
    with pytest.raises(UnknownModelError, match="excluded_models"):
        router.select("hi", constraints=Constraints(excluded_models=["gpt-5-typo"]))
    with pytest.raises(UnknownModelError, match="preferred_providers"):
        router.select("hi", constraints=Constraints(preferred_providers=["nobody"]))
    with pytest.raises(InvalidConstraintsError):
        Constraints(allowed_models=5)  # type: ignore[arg-type]
    d = router.select("hi", constraints=Constraints(excluded_models=["tiny", "frontier/large"]))
    assert d.model not in {"tiny", "large"}


@pytest.mark.parametrize("update, error", [
    ({"tiny": {"input_price_per_1m": 9.0}, "tinier": {"input_price_per_1m": 1.0}},
     UnknownModelError),
    ({"tiny": {"input_price_per_1m": 9.0, "output_price_per_1m": -1.0}}, CatalogError),
])
def test_price_updates_are_all_or_nothing(make_router: MakeRouter, update: dict,
                                          error: type) -> None:
    """A bad entry anywhere in one update leaves every price, and the log, as it was."""
    router = make_router()
    snapshot = router.catalog.to_dict()
    with pytest.raises(error):
        router.update_pricing("budget", update)
    assert router.catalog.to_dict() == snapshot
    assert router.store.prices() == []


def test_replicas_pick_up_price_changes_on_sync(make_router: MakeRouter) -> None:
    a, b = make_router(), make_router()
    a.update_pricing("budget", {"tiny": {"output_price_per_1m": 3.0}})
    assert b.catalog.find("budget", "tiny").output_price_per_1m == 0.1
    b.sync()
    assert b.catalog.find("budget", "tiny").output_price_per_1m == 3.0


def test_checkpoint_with_other_settings_is_not_loaded(make_router: MakeRouter) -> None:
    first = make_router()
    train(first, 60)
    first.close()
    second = make_router(policy=PolicyConfig(embedding_dims=32))
    assert second.policy_version == 60
    third = make_router(config=RouterConfig(cost_weight=50.0, memory_size=40,
                                            task_clusters=()))
    assert third.get_routing_stats()["remembered_tasks"] <= 40


def test_settings_added_later_keep_old_checkpoints_at_their_old_behaviour(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """A checkpoint's identity is the policy settings' repr: a setting added since (such as
    ``optimism``) is left out of it at the value that behaves as before, so upgrading keeps
    the checkpoints; any other value is other settings, and the log is relearned."""
    from bandit_router.core._learner import _legacy_settings as _settings

    plain = PolicyConfig(seed=5)
    assert _settings(plain) == repr(plain).replace(", optimism=0.0", "").replace(
        ", baseline_strength=0.0", "").replace(", thompson_scale=0.5", "").replace(
        ", thompson_prior=20.0", "").replace(", thompson_memory=1000.0", "").replace(
        ", thompson_draws=256", "").replace(", thompson_floor=0.0", "").replace(
        ", thompson_tries=1", "")
    assert "optimism=0.2" in _settings(PolicyConfig(exploration="squarecb", seed=5, optimism=0.2))
    first = make_router(policy=plain)
    train(first, 40)
    first.close()
    with caplog.at_level("INFO", logger="bandit_router"):
        again = make_router(policy=plain)
        assert "restored checkpoint" in caplog.text and "other settings" not in caplog.text
        caplog.clear()
        other = make_router(policy=PolicyConfig(exploration="squarecb", seed=5, optimism=0.2))
        assert "other settings" in caplog.text and "restored checkpoint" not in caplog.text
    assert again._learner.config_hash() != other._learner.config_hash()
    assert again.policy_version == other.policy_version == 40


def test_another_embedder_on_an_old_store_relearns_the_log_once(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """Upgrading to a default embedder of another name (float32 to int8): the checkpoint,
    keyed by the embedder's name, is not used; the policy is relearned from the log, whose
    events keep the old vectors, and the new router checkpoints under its own name."""

    class Renamed(HashEmbedder):
        name = "hash-embedder-renamed"

    first = make_router()
    train(first, 40)
    first.close()
    with caplog.at_level("INFO", logger="bandit_router"):
        upgraded = make_router(embedder=Renamed())
        assert "other settings" in caplog.text and "restored checkpoint" not in caplog.text
    assert upgraded.policy_version == 40  # every reward relearned
    assert upgraded.get_routing_stats()["remembered_tasks"] == 40
    train(upgraded, 10)
    upgraded.close()
    caplog.clear()
    with caplog.at_level("INFO", logger="bandit_router"):
        again = make_router(embedder=Renamed())
        assert "restored checkpoint" in caplog.text  # once: then its own checkpoint serves
    assert again.policy_version == 50


def test_in_memory_sqlite_is_shared_across_threads() -> None:
    router = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
    d = router.select("hello")
    errors: list[BaseException] = []

    def reward() -> None:
        try:
            router.reward(d.event_id, quality=1.0)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    t = threading.Thread(target=reward)
    t.start()
    t.join()
    assert errors == [] and router.policy_version == 1


def test_concurrent_selects_and_rewards_lose_nothing(make_router: MakeRouter) -> None:
    router = make_router()
    decisions = [router.select(f"Tell me a fun fact about animal number {i}.")
                 for i in range(80)]
    errors: list[BaseException] = []

    def worker(chunk: list) -> None:
        try:
            for d in chunk:
                router.select("Translate 'hello' to French.")
                router.reward(d.event_id, quality=0.5, cost_usd=0.0001)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(decisions[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert router.policy_version == 80
    stats = router.get_routing_stats()
    assert stats["rewarded"] == 80 and stats["decisions"] == 160


def test_the_same_event_id_draws_the_same_action() -> None:
    from bandit_router.core.policies import RandomPolicy

    policy = RandomPolicy(seed=0)
    acts = [{}, {}, {}, {}]
    picks = {policy.decide({}, acts, draw=u)[0] for u in (0.0, 0.24, 0.26, 0.5, 0.99)}
    assert picks == {0, 1, 2, 3}
    assert policy.decide({}, acts, draw=0.6)[0] == policy.decide({}, acts, draw=0.6)[0] == 2
    with pytest.raises(ValueError):
        policy.decide({}, acts, draw=1.0)


def test_a_server_keeps_maintenance_off_the_request_path(make_router: MakeRouter,
                                                         clock) -> None:
    config = RouterConfig(cost_weight=50.0, reward_wait_s=10, maintenance_on_request=False)
    router = make_router(config=config, clock=clock)
    old = router.select("Tell me a fun fact about owls.")
    clock.advance(11)
    router.select("Tell me a fun fact about cats.")  # no sweep, no learning here
    assert router.store.get_event(old.event_id).status == "pending"  # type: ignore
    assert router.process_expired(learn=False) == 1
    assert router.store.get_event(old.event_id).status == "defaulted"  # type: ignore
    assert router.policy_version == 0  # stored, not learned
    assert router.sync() == 1 and router.policy_version == 1


@pytest.mark.parametrize("event_id", ["a/b", "a%41", "q?x", "a b", "é"])
def test_event_ids_are_url_safe(make_router: MakeRouter, event_id: str) -> None:
    with pytest.raises(InvalidTaskError):
        make_router().select("hello", event_id=event_id)


def test_unencodable_text_is_refused(make_router: MakeRouter) -> None:
    router = make_router()
    with pytest.raises(InvalidTaskError):
        router.select("bad \ud800 text")
    with pytest.raises(InvalidTaskError):
        router.select("hello", metadata={"k": "\ud800"})
    with pytest.raises(CatalogError):
        router.update_pricing("budget", {"tiny": {"output_price_per_1m": 1e308}})


def test_an_event_at_hand_is_still_checked_against_the_database(
        make_router: MakeRouter) -> None:
    """reward() takes an event this router just logged from memory; what other routers on
    the database did to it meanwhile still decides the outcome."""
    from bandit_router import DuplicateRewardError, RewardWindowClosedError

    mine, other = make_router(config=RouterConfig(cost_weight=1000.0)), make_router()
    rewarded, defaulted = mine.select("What is 2 + 2?"), mine.select("Name a colour.")
    bad, deleted = mine.select("Say hi."), mine.select("Say bye.")
    other.reward(rewarded.event_id, quality=0.5)
    other.store.add_default_rewards(before=math.inf, now=0.0, reward=0.0)  # e.g. skewed clock
    with pytest.raises(DuplicateRewardError):
        mine.reward(rewarded.event_id, quality=1.0)
    with pytest.raises(RewardWindowClosedError):
        mine.reward(defaulted.event_id, quality=1.0)
    with pytest.raises(RewardWindowClosedError):  # reported before the value out of range
        mine.reward(bad.event_id, quality=0.5, cost_usd=1e4)
    with other.store.session() as s:
        from bandit_router.core._store import EventRow, RewardRow

        s.query(RewardRow).filter_by(event_id=deleted.event_id).delete()
        s.query(EventRow).filter_by(id=deleted.event_id).delete()
    with pytest.raises(UnknownEventError):
        mine.reward(deleted.event_id, quality=1.0)
    assert mine.get_event(rewarded.event_id).reward["quality"] == 0.5  # type: ignore[index]


def test_a_checkpoint_says_what_it_was_written_with(
        make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    """Format 2: a manifest beside the hash. A setting that changes decisions only loads it;
    one that changes what is learned does not, and the log names the setting."""
    from sqlalchemy import update

    from bandit_router.core._learner import CHECKPOINT_FORMAT
    from bandit_router.core._store import CheckpointRow

    first = make_router(policy=PolicyConfig(seed=3))
    train(first, 40)
    first.close()
    with first.store.session() as s:
        row = s.query(CheckpointRow).order_by(CheckpointRow.id.desc()).first()
        assert row is not None and row.manifest is not None
        assert row.manifest["format"] == CHECKPOINT_FORMAT == 2
        assert row.manifest["settings"]["thompson_prior"] == 20.0
        assert "thompson_scale" not in row.manifest["settings"]  # decides only
    with caplog.at_level("INFO", logger="bandit_router"):
        wider = make_router(policy=PolicyConfig(seed=3, thompson_scale=0.9))
        assert "restored checkpoint" in caplog.text and wider.policy_version == 40
        caplog.clear()
        make_router(policy=PolicyConfig(seed=3, thompson_prior=5.0))
        assert "thompson_prior 20.0 then, 5.0 now" in caplog.text
        caplog.clear()
        # a checkpoint of format 1 (no manifest, the hash alone) still loads
        with first.store.session() as s:
            s.execute(update(CheckpointRow).values(manifest=None))
        old = make_router(policy=PolicyConfig(seed=3))
        assert "restored checkpoint" in caplog.text and "other settings" not in caplog.text
        assert old.policy_version == 40


def test_a_failed_checkpoint_does_not_fail_the_reward_it_follows(
        make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The reward is durable before the checkpoint: a checkpoint that fails to write is
    logged and retried by the next one, not raised to a caller who would retry the reward
    and get DuplicateRewardError."""
    from sqlalchemy.exc import OperationalError

    router = make_router(config=RouterConfig(checkpoint_every=1))

    def fail(*_: object, **__: object) -> None:
        raise OperationalError("INSERT INTO checkpoints", {}, Exception("database is locked"))

    monkeypatch.setattr(router.store, "add_checkpoint", fail)
    d = router.select("What is 2 + 2?")
    with caplog.at_level("WARNING", logger="bandit_router"):
        receipt = router.reward(d.event_id, quality=1.0)
    assert receipt.policy_version == 1
    assert router.get_event(d.event_id).reward is not None
    assert "checkpoint" in caplog.text and "database is locked" in caplog.text
    monkeypatch.undo()
    d = router.select("What is 3 + 3?")
    router.reward(d.event_id, quality=1.0)
    assert router.store.checkpoints()[0].learned == 2

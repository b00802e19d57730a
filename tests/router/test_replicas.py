"""One learner, many replicas: followers serve the published model and learn nothing
themselves; a standby takes over from the newest publication; nothing is learned twice.
Real VW, real FAISS, SQLite files and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from bandit_router import HashEmbedder, PolicyConfig, Router, RouterConfig
from bandit_router.core import _namespaces as ns
from bandit_router.core._features import task_features
from bandit_router.core._scoring import action_features
from bandit_router.eval.simulation import SyntheticWorkload, demo_catalog

COST_WEIGHT = 50.0


@pytest.fixture
def url(db_url: str) -> str:
    return db_url


def _router(url: str, *, follow: bool = False, seed: int = 0) -> Router:
    # checkpoints only when published, so the test decides what followers can see
    return Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(),
                  policy=PolicyConfig(seed=seed),
                  config=RouterConfig(cost_weight=COST_WEIGHT, checkpoint_every=10**9),
                  follow=follow)


def _play(router: Router, wl: SyntheticWorkload, n: int, tag: str, *,
          learn: bool = True) -> list[float]:
    """n rounds decided by ``router``; the expected reward of each choice."""
    out = []
    for i in range(n):
        task = wl.sample_task()
        d = router.select(task.text, event_id=f"{tag}-{i}")
        key = f"{d.provider}/{d.model}"
        o = wl.outcome(task, key)
        router.reward(d.event_id, quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s,
                      learn=learn)
        out.append(wl.expected_reward(task.topic, key, COST_WEIGHT))
    return out


def _pmf(router: Router, text: str, draw: float) -> list[float]:
    """The distribution ``router`` would decide ``text`` with, for a given draw (a select
    would log an event, and derive its draw from the event's id)."""
    emb = np.asarray(router.embedder.embed([text])[0], np.float32)
    specs = list(router.catalog)
    estimates = router._learner.estimates(specs, emb, 100)
    actions = [action_features(s, e, cost_weight=COST_WEIGHT,
                               latency_weight=router.config.latency_weight)
               for s, e in zip(specs, estimates, strict=True)]
    context = {ns.EMBEDDING: emb, **router._learner.task_context(emb, task_features(text))}
    return router.policy.pmf(context, actions, draw=draw)


def _learned_per_checkpoint(url: str) -> list[tuple[int, int, int]]:
    """(learned, rewards in the log up to its seq, seq) of every checkpoint kept."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(int(learned), int(conn.execute(text(
                "SELECT count(*) FROM br_rewards r JOIN br_events e ON e.id = r.event_id "
                "WHERE r.seq <= :s AND e.arm = ''"), {"s": seq}).scalar()), int(seq))
                for learned, seq in conn.execute(text(
                    "SELECT learned, reward_seq FROM br_checkpoints WHERE arm = ''"))]
    finally:
        engine.dispose()


def test_a_follower_serves_the_published_model_and_learns_nothing_itself(url: str) -> None:
    wl = SyntheticWorkload(seed=1)
    learner = _router(url)
    follower = _router(url, follow=True)
    try:
        _play(learner, wl, 200, "l")
        assert learner.policy_version == 200
        assert follower.refresh() == 0 and follower.policy_version == 0  # nothing published
        assert learner.publish() == 200 and learner.publish() is None  # once per change
        assert follower.refresh() == 200 and follower.policy_version == 200
        # the same model: the same distribution over models for every task and draw
        assert len(follower._learner.memory) == len(learner._learner.memory) > 0
        for i in range(20):
            probe, draw = wl.sample_task().text, (i + 0.5) / 20
            assert _pmf(follower, probe, draw) == pytest.approx(_pmf(learner, probe, draw))
        probe = wl.sample_task().text
        mine = follower.select(probe, event_id="probe-f", cost_weight=COST_WEIGHT)
        theirs = learner.select(probe, event_id="probe-l", cost_weight=COST_WEIGHT)
        assert mine.policy_version == theirs.policy_version == 200  # the version is logged
        assert mine.estimated_quality == pytest.approx(theirs.estimated_quality)
        # rewards given through the follower are stored, not learned by it ...
        _play(follower, wl, 50, "f")
        assert follower.policy_version == 200 and follower.sync() == 0
        # ... but by the learner, once, from the log
        assert learner.sync() == 50
        assert learner.publish() == 250 and follower.sync() == 50
        checkpoints = len(learner.store.checkpoints())
        follower.close()  # a follower never publishes
        assert len(learner.store.checkpoints()) == checkpoints
    finally:
        learner.close()


def test_a_standby_takes_over_from_the_newest_publication(url: str) -> None:
    wl = SyntheticWorkload(seed=2)
    first = _router(url)
    standby = _router(url, follow=True)
    api = _router(url, follow=True)
    try:
        _play(first, wl, 150, "a")
        first.publish()
        _play(first, wl, 30, "b")  # learned, never published: the leader then dies
        first.store.close()
        _play(api, wl, 40, "c")  # traffic goes on through a replica meanwhile
        assert standby.take_over() == 70  # the newest publication, then the log after it
        assert standby.policy_version == 220 and not standby.following
        assert standby.publish() == 220
        assert api.refresh() == 220 and api.policy_version == 220  # it had loaded nothing
        for learned, logged, _seq in _learned_per_checkpoint(url):
            assert learned == logged  # every reward in the log up to it, each once
        standby.step_down()
        assert standby.following and standby.publish() is None
    finally:
        standby.close()
        api.close()


@pytest.mark.slow
def test_a_learner_and_two_followers_learn_a_stream_as_well_as_one_process(
        tmp_path: Path) -> None:
    """Two replicas that decide on models published every 50 rewards against one process
    that learns each reward at once: the same workload, seeds and rounds. Tolerance: the
    replicas' last-half mean reward within 0.03 of the single process's (its seed spread)."""
    rounds, every = 1200, 50
    single_scores, split_scores = [], []
    for seed in (0, 1):
        wl = SyntheticWorkload(seed=seed)
        single = _router(f"sqlite:///{tmp_path / f'single{seed}.db'}", seed=seed)
        single_scores.append(float(np.mean(_play(single, wl, rounds, "s")[rounds // 2:])))
        single.close()

        url = f"sqlite:///{tmp_path / f'split{seed}.db'}"
        wl = SyntheticWorkload(seed=seed)
        learner = _router(url, seed=seed)
        replicas = [_router(url, follow=True, seed=seed) for _ in range(2)]
        got: list[float] = []
        for start in range(0, rounds, every):
            replica = replicas[(start // every) % 2]
            got += _play(replica, wl, every, f"r{start}")
            learner.sync()
            learner.publish()
            for r in replicas:
                r.refresh()
        assert {r.policy_version for r in replicas} == {learner.policy_version} == {rounds}
        split_scores.append(float(np.mean(got[rounds // 2:])))
        for router in (*replicas, learner):
            router.close()
    print(f"last-half reward: one process {single_scores}, a learner and two followers "
          f"{split_scores}")
    assert np.mean(split_scores) >= np.mean(single_scores) - 0.03
    assert min(split_scores) >= min(single_scores) - 0.05


def test_a_failed_publication_is_due_again_and_a_follower_never_learns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from bandit_router import InvalidInputError
    from bandit_router.eval.datasets import synthetic_dataset

    url = f"sqlite:///{tmp_path / 'publish.db'}"
    learner, follower = _router(url), _router(url, follow=True)
    try:
        _play(learner, SyntheticWorkload(seed=4), 30, "p")
        real = learner.store.add_checkpoint

        def fail(*a: object, **k: object) -> None:
            raise OperationalError("INSERT", {}, Exception("disk full"))
        monkeypatch.setattr(learner.store, "add_checkpoint", fail)
        with pytest.raises(OperationalError):
            learner.publish()
        monkeypatch.setattr(learner.store, "add_checkpoint", real)
        assert learner.publish() == 30  # still due: written now
        assert follower.refresh() == 30
        with pytest.raises(InvalidInputError, match="learner"):
            follower.warm_start(synthetic_dataset(n=5, seed=0))
        # a follower with other settings cannot serve it: it says so once, not every look
        other = _router(url, follow=True, seed=7)
        reads = []
        read = other.store.checkpoint
        monkeypatch.setattr(other.store, "checkpoint",
                            lambda i: reads.append(i) or read(i))
        assert other.refresh() == 0 and other.refresh() == 0 and len(reads) == 1
        assert other.policy_version == 0
        other.close()
    finally:
        learner.close()
        follower.close()


def test_a_follower_reads_from_the_log_only_the_tasks_learned_since_its_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'incremental.db'}"
    wl = SyntheticWorkload(seed=5)
    learner, follower = _router(url), _router(url, follow=True)
    try:
        _play(learner, wl, 120, "a")
        learner.publish()
        read: list[int] = []
        embeddings = follower.store.embeddings

        def counted(seqs: np.ndarray, *, dim: int) -> np.ndarray:
            read.append(len(seqs))
            return embeddings(seqs, dim=dim)
        monkeypatch.setattr(follower.store, "embeddings", counted)
        assert follower.refresh() == 120 and read == [120]  # the first model: all of it
        _play(learner, wl, 30, "b")
        learner.publish()
        assert follower.refresh() == 30 and read == [120, 30]  # then only what is new
        for i in range(10):  # and the memory rebuilt that way is the learner's
            probe, draw = wl.sample_task().text, (i + 0.5) / 10
            assert _pmf(follower, probe, draw) == pytest.approx(_pmf(learner, probe, draw))
    finally:
        learner.close()
        follower.close()

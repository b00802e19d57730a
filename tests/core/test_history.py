"""Warm start from logged bandit history: validation, learning with the logged probability,
idempotence, and the file format. Real VW, real SQLite, the simulated workload."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from bandit_router import (
    InvalidInputError,
    InvalidRewardError,
    InvalidTaskError,
    LoggedDecision,
    PolicyConfig,
    Router,
    RouterConfig,
    UnknownModelError,
    load_logged_decisions,
)
from bandit_router.core._scoring import CROSSED_ONLY, PINNED
from bandit_router.core._store import EventRow
from bandit_router.core.policies import VWPolicy
from bandit_router.eval.datasets import synthetic_dataset
from bandit_router.eval.simulation import HashEmbedder, SyntheticWorkload, demo_catalog

LAM = 50.0


def make(url: str = "sqlite://", **kwargs: Any) -> Router:
    kwargs.setdefault("config", RouterConfig(cost_weight=LAM))
    return Router(database_url=url, catalog=demo_catalog(), embedder=HashEmbedder(), **kwargs)


def uniformly_logged(n: int, *, seed: int = 0, probability: float | None = None,
                     ids: bool = True) -> list[LoggedDecision]:
    """Decisions of a uniform-random logging policy over the five simulated models."""
    wl, rng = SyntheticWorkload(seed=seed), np.random.default_rng(seed)
    out = []
    for i in range(n):
        task = wl.sample_task()
        key = wl.keys[int(rng.integers(len(wl.keys)))]
        o = wl.outcome(task, key)
        out.append(LoggedDecision(
            event_id=f"src-{seed}-{i}" if ids else None, task=task.text, eligible=wl.keys,
            chosen=key, probability=1 / len(wl.keys) if probability is None else probability,
            quality=o.quality, cost_usd=o.cost_usd, latency_s=o.latency_s,
            output_tokens=o.output_tokens, timestamp=1_700_000_000.0 + i))
    return out


def n_events(router: Router) -> int:
    with router.store.session() as s:
        return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)


def greedy_value(router: Router, tasks: list[Any], wl: SyntheticWorkload, tag: str) -> float:
    """Mean expected reward of the model the router gives the highest probability."""
    values = []
    for i, task in enumerate(tasks):
        d = router.select(task.text, event_id=f"{tag}-{i}")
        options = [(d.probability, f"{d.provider}/{d.model}")] + [
            (a.probability, f"{a.provider}/{a.model}") for a in d.alternatives]
        values.append(wl.expected_reward(task.topic, max(options)[1], LAM))
    return float(np.mean(values))


def test_a_logged_decision_is_validated_at_construction() -> None:
    good = {"task": "hi", "chosen": "tiny", "probability": 0.5, "quality": 0.9,
            "cost_usd": 0.001}
    assert LoggedDecision(**good).probability == 0.5
    assert LoggedDecision(**{**good, "probability": 1}).probability == 1.0
    for bad in (0, 0.0, -0.2, 1.5, float("nan"), float("inf"), True, "0.5", None):
        with pytest.raises(InvalidInputError, match="probability"):
            LoggedDecision(**{**good, "probability": bad})
    for name, value in (("quality", 1.2), ("quality", float("nan")), ("cost_usd", -1.0),
                        ("cost_usd", 1e9), ("latency_s", float("nan")),
                        ("latency_s", -0.1)):
        with pytest.raises(InvalidRewardError, match=name):
            LoggedDecision(**{**good, name: value})
    with pytest.raises(InvalidTaskError):
        LoggedDecision(**{**good, "task": None})  # neither task nor embedding
    with pytest.raises(InvalidTaskError):
        LoggedDecision(**{**good, "task": "  "})
    with pytest.raises(InvalidInputError, match="input_tokens"):
        LoggedDecision(**{**good, "task": None, "embedding": [0.6, 0.8]})
    with pytest.raises(InvalidInputError, match="embedding"):
        LoggedDecision(**{**good, "embedding": [0.1, float("nan")]})
    with pytest.raises(InvalidInputError, match="not a string"):
        LoggedDecision(**{**good, "eligible": "tiny"})
    with pytest.raises(InvalidInputError, match="twice"):
        LoggedDecision(**{**good, "eligible": ["tiny", "tiny"]})
    with pytest.raises(InvalidInputError, match="one eligible model"):
        LoggedDecision(**{**good, "eligible": ["tiny"]})  # then it was chosen for sure
    with pytest.raises(InvalidInputError, match="output_tokens"):
        LoggedDecision(**{**good, "output_tokens": 2.5})
    with pytest.raises(InvalidInputError, match="timestamp"):
        LoggedDecision(**{**good, "timestamp": -1})
    with pytest.raises(InvalidInputError, match="chosen"):
        LoggedDecision(**{**good, "chosen": ""})


def test_one_bad_record_raises_its_typed_error_and_nothing_is_written() -> None:
    router = make(config=RouterConfig(cost_weight=LAM, max_task_chars=500))
    good = uniformly_logged(30)
    cases: list[tuple[Any, type[Exception], str]] = [
        (replace(good[0], chosen="gpt-4o"), UnknownModelError, "gpt-4o"),
        (replace(good[0], eligible=("tiny", "large", "nope")), UnknownModelError, "nope"),
        (replace(good[0], chosen="tiny", eligible=("large", "coder")), InvalidInputError,
         "not among the eligible"),
        (replace(good[0], eligible=("tiny", "budget/tiny")), InvalidInputError, "twice"),
        (replace(good[0], task="x" * 501), InvalidTaskError, "limit"),
        (replace(good[0], embedding=np.ones(8, np.float32) / np.sqrt(8)), InvalidInputError,
         "dimensions"),
        ({"task": "not a record"}, InvalidInputError, "not a LoggedDecision"),
    ]
    for bad, error, message in cases:
        with pytest.raises(error, match=message) as info:
            router.warm_start([*good, bad, *good[:3]])
        assert "logged decision 30" in str(info.value)  # which record
        assert n_events(router) == 0 and router.policy_version == 0
    with pytest.raises(InvalidRewardError, match="reward"):  # cost x weight out of bounds
        make(config=RouterConfig(cost_weight=1e6)).warm_start([replace(good[0], cost_usd=5.0)])
    with pytest.raises(InvalidInputError):
        router.warm_start("decisions.jsonl")  # a path is not history: load it first
    assert router.warm_start([]) == 0


def test_warm_start_from_uniformly_logged_decisions_beats_random(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'logged.db'}"
    router = make(url)
    records = uniformly_logged(800)
    assert router.warm_start(records) == 800 == router.policy_version
    assert router.get_routing_stats()["decisions"] == 0  # history is not traffic
    probe = SyntheticWorkload(seed=99)
    tasks = probe.tasks(300)
    warm = greedy_value(router, tasks, probe, "warm")
    cold = greedy_value(make(), tasks, probe, "cold")  # the catalog's priors only
    uniform = float(np.mean([np.mean([probe.expected_reward(t.topic, k, LAM)
                                      for k in probe.keys]) for t in tasks]))
    best = float(np.mean([probe.expected_reward(t.topic, probe.best_model(t.topic, LAM), LAM)
                          for t in tasks]))
    # measured: uniform 0.61, cold 0.63, warm 0.81, per-topic best 0.83
    assert warm > uniform + 0.12 and warm > cold + 0.1 and warm > best - 0.08
    router.close()
    again = make(url)  # the history is in the log: a rebuild relearns it
    assert again.policy_version == 800
    again.close()


class RecordingVW(VWPolicy):
    """The real VW policy, noting the probability every update is made with."""

    def __init__(self) -> None:
        super().__init__(PolicyConfig(), input_dim=HashEmbedder().dim, pinned=PINNED,
                         crossed_only=CROSSED_ONLY)
        self.probabilities: list[float] = []

    def learn(self, context: Any, actions: Any, index: int, reward: float,
              probability: float, *, memo: object = None) -> None:
        self.probabilities.append(probability)
        super().learn(context, actions, index, reward, probability, memo=memo)


def test_the_logged_probability_is_stored_and_learned_with() -> None:
    policy = RecordingVW()
    router = make(policy=policy)
    records = uniformly_logged(200)
    skewed = replace(records[0], event_id="skewed", chosen="large",
                     eligible=("large", "tiny"), probability=0.9)
    router.warm_start([*records, skewed])
    items = router.store.learn_log(0)
    assert [i.event.probability for i in items] == [0.2] * 200 + [0.9]
    assert items[0].event.pmf == pytest.approx([0.2] * 5)  # uniform: all known
    assert items[-1].event.pmf == pytest.approx([0.9, 0.1])
    assert items[-1].event.model_key == "frontier/large"
    assert [a["key"] for a in items[-1].event.actions] == ["frontier/large", "budget/tiny"]
    assert items[-1].event.meta == {"history": "logged", "source_event_id": "skewed"}
    assert items[-1].event.created_at == skewed.timestamp
    assert items[0].reward.reward == pytest.approx(
        records[0].quality - LAM * records[0].cost_usd)
    assert policy.probabilities == [0.2] * 200 + [0.9]  # what VW was given, not 1
    # labelled history is logged and learned with probability 1
    router.warm_start(synthetic_dataset(4, seed=1))
    assert policy.probabilities[201:] == [1.0] * 20

    # the same decisions logged with probability 1 (a deterministic policy) teach VW's
    # softmax something else: the importance weight 1/p scales each update (the regressor
    # of Thompson sampling and squareCB is fitted without it, as squareCB prescribes)
    softmax = PolicyConfig(exploration="softmax")
    weighted, unweighted = make(policy=softmax), make(policy=softmax)
    weighted.warm_start(records)
    unweighted.warm_start([replace(r, probability=1.0) for r in records])
    assert weighted.policy.to_bytes() != unweighted.policy.to_bytes()
    probe = SyntheticWorkload(seed=7).tasks(60)
    gaps = []
    for i, task in enumerate(probe):
        a = weighted.select(task.text, event_id=f"w{i}")
        b = unweighted.select(task.text, event_id=f"w{i}")
        pa = {m.model: m.probability for m in a.alternatives} | {a.model: a.probability}
        pb = {m.model: m.probability for m in b.alternatives} | {b.model: b.probability}
        gaps.append(max(abs(pa[m] - pb[m]) for m in pa))
    assert max(gaps) > 0.02


def test_warm_start_is_idempotent(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'idem.db'}"
    router = make(url)
    records = uniformly_logged(100)
    assert router.warm_start(records) == 100
    assert router.warm_start(records) == 0  # nothing twice: re-run or resume at will
    assert n_events(router) == 100 and router.policy_version == 100
    more = uniformly_logged(130)  # the same log, grown: only the new records are learned
    assert router.warm_start(more) == 30 and n_events(router) == 130
    # another arm on the same database learns its own copy
    other = make(url, arm="B")
    assert other.warm_start(records) == 100 and other.policy_version == 100
    assert router.warm_start(records) == 0

    # records are identified by their source event_id; without one, by their content
    anonymous = uniformly_logged(20, seed=5, ids=False)
    assert router.warm_start(anonymous) == 20 and router.warm_start(anonymous) == 0
    with pytest.raises(InvalidInputError, match="give each its source event_id"):
        fresh = uniformly_logged(3, seed=6, ids=False)
        router.warm_start([*fresh, fresh[1]])
    with pytest.raises(InvalidInputError, match="same event_id"):
        router.warm_start([records[0], replace(records[1], event_id=records[0].event_id)])
    twins = [replace(anonymous[0], event_id="t1"), replace(anonymous[0], event_id="t2")]
    assert router.warm_start(twins) == 2  # identical content, two decisions
    assert n_events(router) == 100 + 30 + 100 + 20 + 2

    # labelled history is idempotent too
    ds = synthetic_dataset(30, seed=2)
    assert router.warm_start(ds) == 150 and router.warm_start(ds) == 0
    assert router.warm_start(ds.subset(range(40 // 2))) == 0


def test_records_may_carry_their_embedding_instead_of_the_text() -> None:
    wl = SyntheticWorkload(seed=4)
    tasks = wl.tasks(50)
    vectors = HashEmbedder().embed([t.text for t in tasks])
    records = [LoggedDecision(embedding=v, input_tokens=12, chosen="large", probability=1.0,
                              quality=0.9, cost_usd=0.004, event_id=f"e{i}")
               for i, v in enumerate(vectors)]
    router = make()
    assert router.warm_start(records) == 50
    item = router.store.learn_log(0, limit=1)[0]
    assert np.frombuffer(item.event.embedding, np.float32) == pytest.approx(vectors[0])
    assert item.event.input_tokens == 12 and item.event.context == {"T": {}}
    assert item.reward.latency_s is None  # not observed; the reward used the estimate


def test_load_logged_decisions_from_jsonl_and_csv(tmp_path) -> None:
    records = uniformly_logged(5)
    rows = [{"event_id": r.event_id, "task": r.task, "eligible": list(r.eligible or ()),
             "chosen": r.chosen, "probability": r.probability, "quality": r.quality,
             "cost_usd": r.cost_usd, "latency_s": r.latency_s,
             "output_tokens": r.output_tokens, "timestamp": r.timestamp, "user": "u1"}
            for r in records]
    jsonl = tmp_path / "decisions.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_logged_decisions(jsonl) == records
    assert load_logged_decisions(jsonl, limit=2) == records[:2]
    gz = tmp_path / "decisions.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(jsonl.read_text())
    assert load_logged_decisions(gz) == records

    import csv

    path = tmp_path / "decisions.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "eligible": "|".join(r["eligible"])})
        writer.writerow({**rows[0], "event_id": "no-eligible", "eligible": "",
                         "latency_s": "", "output_tokens": ""})
    loaded = load_logged_decisions(path)
    assert loaded[:5] == records
    assert loaded[5].eligible is None and loaded[5].latency_s is None
    router = make()
    assert router.warm_start(loaded) == 6
    assert len(router.store.learn_log(0)[-1].event.actions) == 5  # whole catalog eligible

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "probability": 0})
                   + "\n")
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:2: probability"):
        load_logged_decisions(bad)
    bad.write_text(json.dumps({k: v for k, v in rows[0].items() if k != "quality"}) + "\n")
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:1: quality is missing"):
        load_logged_decisions(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InvalidInputError, match="not JSON"):
        load_logged_decisions(bad)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("task,chosen,probability,quality,cost_usd\nhi,tiny,half,1,0\n")
    with pytest.raises(InvalidInputError, match=r"bad\.csv:2: probability must be a number"):
        load_logged_decisions(bad_csv)

from __future__ import annotations

import numpy as np
import pytest

from bandit_router import PolicyConfig
from bandit_router.policies import VWPolicy


def test_learns_which_action_pays_in_each_context() -> None:
    policy = VWPolicy(PolicyConfig(seed=0))
    acts = [{"M": {"a": 1.0}}, {"M": {"b": 1.0}}]
    rng = np.random.default_rng(0)
    for _ in range(1500):
        ctx = int(rng.integers(2))
        i, p = policy.predict({"T": {f"c{ctx}": 1.0}}, acts)
        reward = 1.0 if i == ctx else 0.0  # action a pays in context 0, b in context 1
        policy.learn({"T": {f"c{ctx}": 1.0}}, acts, i, reward=reward, probability=p)
    assert policy.pmf({"T": {"c0": 1.0}}, acts)[0] > 0.8
    assert policy.pmf({"T": {"c1": 1.0}}, acts)[1] > 0.8


def test_projection_reduces_the_embedding() -> None:
    policy = VWPolicy(PolicyConfig(embedding_dims=8), input_dim=64)
    line = policy._namespaces({"E": np.ones(64, np.float32) / 8})
    assert len(line.split()) == 1 + 8


def test_feature_names_are_escaped() -> None:
    line = VWPolicy()._namespaces({"M": {"openai/gpt 4o:mini|x": 1.0}})
    assert line == "|M openai/gpt_4o_mini_x"


def test_corrupt_model_bytes_raise() -> None:
    policy = VWPolicy()
    with pytest.raises(RuntimeError):
        policy.load_bytes(b"not a model" * 10)
    with pytest.raises(ValueError):
        policy.load_bytes(b"")
    assert len(policy.pmf({"T": {"x": 1.0}}, [{"M": {"a": 1.0}}])) == 1  # still usable

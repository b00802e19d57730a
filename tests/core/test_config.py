from __future__ import annotations

import pytest

from bandit_router import EXPLORATIONS, InvalidInputError, PolicyConfig, RouterConfig
from bandit_router.core.policies import VWPolicy


def test_defaults_are_valid_and_frozen() -> None:
    cfg = RouterConfig()
    with pytest.raises(AttributeError):
        cfg.cost_weight = 1.0  # type: ignore[misc]
    assert PolicyConfig().exploration == "thompson"


@pytest.mark.parametrize("kwargs", [
    {"cost_weight": -1.0}, {"cost_weight": float("nan")}, {"latency_weight": -0.1},
    {"reward_wait_s": 0}, {"neighbours": 0}, {"memory_size": 1, "neighbours": 8},
    {"prior_strength": 0}, {"task_difficulty": 1}, {"max_task_chars": 0}, {"checkpoint_every": 0},
    {"default_reward": float("inf")}, {"exact_recall_limit": 100},
    {"per_model_neighbours": 0}, {"per_model_neighbours": 300}, {"per_model_neighbours": True},
    {"exact_recall_limit": True}, {"exact_recall_limit": 4096.0},
])
def test_router_config_rejects(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        RouterConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [
    {"exploration": "ucb"}, {"exploration": "bag"}, {"epsilon": 1.5}, {"gamma_scale": 0},
    {"bits": 40}, {"interactions": ("EMX",)}, {"embedding_dims": 0}, {"learning_rate": 0},
    {"extra_args": "-i model.vw"}, {"exploration": "epsilon", "elimination": True},
    {"reward_range": (1.0, -1.0)}, {"reward_range": (0.0, float("inf"))},
    {"extra_args": "--elim"}, {"extra_args": "--cb_min_cost -2"},
    {"exploration_floor": 0.6}, {"exploration_floor": -0.1},
    {"optimism": -0.1}, {"optimism": 11.0}, {"optimism": float("nan")},
    {"optimism": 0.2, "elimination": True}, {"optimism": 0.2, "exploration": "epsilon"},
    {"optimism": 0.2}, {"elimination": True},  # squareCB's options: the default is thompson
    {"thompson_scale": 0}, {"thompson_scale": 11}, {"thompson_prior": 0},
    {"thompson_memory": 0.5}, {"thompson_draws": 8}, {"thompson_draws": True},
    {"thompson_floor": -0.1}, {"thompson_floor": 0.6}, {"thompson_tries": -1},
    {"thompson_tries": 1.5}, {"thompson_tries": True},
    {"extra_args": "--epsilon 0.1"},
    {"optimism": 0.2, "extra_args": "--epsilon 0.1"}, {"optimism": 0.2, "extra_args": "--bag 3"},
    {"baseline_strength": 10.0}, {"optimism": 0.2, "baseline_strength": -1.0},
    {"optimism": 0.2, "baseline_strength": float("inf")},
    {"seed": -1}, {"seed": True}, {"seed": 2**63}, {"seed": 1.0},
])
def test_policy_config_rejects(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        PolicyConfig(**kwargs)


def test_any_seed_a_policy_config_takes_makes_a_router() -> None:
    """A seed the configuration accepts is one every generator behind it takes (Thompson
    sampling's draws come from NumPy, which takes none below 0)."""
    from bandit_router import Router
    from bandit_router.eval.simulation import HashEmbedder

    for seed in (0, 2**63 - 1):
        router = Router(embedder=HashEmbedder(), policy=PolicyConfig(seed=seed))
        assert router.select("hello").probability > 0
        router.close()


def test_squarecb_runs_vw_s_regressor_and_explores_in_the_adapter() -> None:
    """One squareCB path, with or without optimism: VW fits the regressor, the adapter
    explores; VW's own --squarecb never runs."""
    for optimism in (0.0, 0.2):
        args = PolicyConfig(exploration="squarecb", optimism=optimism,
                            gamma_scale=200).vw_args().split()
        assert args[:3] == ["--cb_adf", "--cb_type", "mtr"]
        assert "--squarecb" not in args and "--cb_explore_adf" not in args
    with pytest.raises(InvalidInputError, match="elimination was removed"):
        PolicyConfig(exploration="squarecb", elimination=True)
    # Thompson sampling runs the same regressor and explores in the adapter
    assert PolicyConfig().vw_args().split()[:3] == ["--cb_adf", "--cb_type", "mtr"]


@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_every_exploration_runs_in_real_vw(exploration: str) -> None:
    cfg = PolicyConfig(exploration=exploration)  # type: ignore[arg-type]
    assert ("--cb_explore_adf" in cfg.vw_args()) == (exploration not in ("thompson",
                                                                         "squarecb"))
    policy = VWPolicy(cfg)
    pmf = policy.pmf({"T": {"x": 1.0}}, [{"M": {"a": 1.0}}, {"M": {"b": 1.0}}])
    assert len(pmf) == 2 and sum(pmf) == pytest.approx(1.0, abs=1e-5)

"""Service settings: environment variables (``BANDIT_ROUTER_*``) over a TOML file."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Every setting of ``bandit-router serve``.

    Each field reads ``BANDIT_ROUTER_<NAME>`` from the environment; a TOML file named by
    ``BANDIT_ROUTER_CONFIG_FILE`` supplies defaults beneath that.
    """

    model_config = SettingsConfigDict(env_prefix="BANDIT_ROUTER_", extra="forbid",
                                      env_parse_none_str="null")

    database_url: str = "sqlite:///bandit_router.db"
    catalog_path: str | None = None
    embedder: Literal["minilm", "hash"] = Field(
        "minilm", description="'hash' is a fast stand-in for development, not for production")
    cost_weight: float = Field(20.0, ge=0, le=1e6)
    latency_weight: float = Field(0.0, ge=0, le=1e6)
    reward_wait_s: float = Field(600.0, gt=0)
    default_reward: float = 0.0
    store_task_text: bool = False
    exploration: Literal["thompson", "squarecb", "epsilon", "softmax", "regcb"] | None = Field(
        None, description="thompson (the default): Thompson sampling per task cluster over "
                          "VW's regressor; or one of VW's explorations. Unset, squarecb when "
                          "one of its options (optimism, elimination, baseline_strength) is")
    thompson_scale: float = Field(0.5, gt=0, le=10, description="Thompson sampling: the "
                                  "posterior's spread (higher explores more)")
    seed: int = 0
    gamma_scale: float = Field(10.0, gt=0, le=1e6, description="squareCB: higher explores less")
    elimination: bool = Field(False, description="squareCB explores only the models whose "
                                                 "confidence interval reaches the best one's")
    optimism: float = Field(0.0, ge=0, le=10, description="squareCB: decision-time bonus "
                                                          "for models tried less (e.g. 0.2)")
    baseline_strength: float = Field(
        0.0, ge=0, le=1e6, description="with optimism: rewards of a model after which VW's "
                                       "prediction and its neighbours' estimate weigh the same "
                                       "(e.g. 10)")
    embedding_dims: int | None = Field(
        None, ge=1, le=4096, description="random projection of the embedding the policy sees")
    task_clusters: tuple[int, ...] = Field(
        (4, 8), description="k-means codebook sizes of task embeddings ([] turns them off), "
                             "e.g. BANDIT_ROUTER_TASK_CLUSTERS='[4, 16]'")
    cluster_after: int = Field(1000, ge=2, description="rewarded tasks before they are fitted")
    exact_recall_limit: int | None = Field(
        4096, ge=1024, description="remembered outcomes searched exactly; beyond, an IVF index "
                                   "(null: always exact)")
    checkpoint_every: int = Field(1000, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    auth: bool = Field(True, description="require API keys (turn off only on a trusted host)")
    learn_interval_s: float = Field(1.0, gt=0, description="learner wake-up at the latest")
    embed_batch: int = Field(64, ge=1, description="most texts embedded in one batch")
    embed_wait_ms: float = Field(2.0, ge=0, description="longest wait for a batch to fill")
    pacing_gain: float = Field(50.0, ge=0, le=100, description="how hard budgets pace spend")
    alert_webhook_url: str | None = Field(None, description="budget alerts are POSTed here")
    price_file: str | None = Field(
        None, description="a LiteLLM model_prices_and_context_window.json (or .gz) applied at "
                          "start-up and again whenever it changes")
    price_file_interval_s: float = Field(30.0, gt=0, description="how often to check it")
    load_balancing_file: str | None = Field(
        None, description="JSON: {strategy, deployments: [...], allowed_fails, cooldown_s}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("BANDIT_ROUTER_CONFIG_FILE")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; tests override this dependency."""
    return Settings()

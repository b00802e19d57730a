"""Service settings: environment variables (``BANDIT_ROUTER_*``) over a TOML file."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bandit_router import (
    DEFAULT_EMBEDDER,
    InvalidInputError,
    PolicyConfig,
    RouterConfig,
    implied_exploration,
)
from bandit_router.core._sql import database_url

__all__ = ["POLICY_SETTINGS", "ROUTER_SETTINGS", "Settings", "get_settings"]

#: The RouterConfig and PolicyConfig fields that the service's settings expose, by the same
#: names.
ROUTER_SETTINGS = ("cost_weight", "latency_weight", "reward_wait_s", "default_reward",
                   "store_task_text", "checkpoint_every", "pacing_gain", "alert_webhook_url",
                   "task_clusters", "cluster_after", "memory_size",
                   "exact_recall_limit", "database_timeout_s", "learn_rate_per_tenant_per_min")
POLICY_SETTINGS = ("exploration", "thompson_scale", "seed", "gamma_scale", "elimination",
                   "optimism", "baseline_strength", "embedding_dims")


class Settings(BaseSettings):
    """Every setting of ``bandit-router serve``.

    Each field reads ``BANDIT_ROUTER_<NAME>`` from the environment; a TOML file named by
    ``BANDIT_ROUTER_CONFIG_FILE`` supplies defaults beneath that.
    """

    model_config = SettingsConfigDict(env_prefix="BANDIT_ROUTER_", extra="forbid",
                                      env_parse_none_str="null")

    database_url: str = "sqlite:///bandit_router.db"
    catalog_path: str | None = None
    embedder: Literal["minilm", "minilm-int8", "minilm-torch", "hash"] = Field(
        DEFAULT_EMBEDDER,
        description="all-MiniLM-L6-v2 by ONNX Runtime ('minilm', the default: float32, the "
                    "torch model's vectors; 'minilm-int8': int8 weights, faster on CPUs with "
                    "int8 dot products; set it on every replica alike) or by torch "
                    "('minilm-torch'); 'hash' is a fast stand-in for development, not for "
                    "production")
    # -- the router's and the policy's settings: their defaults and bounds live once, in
    # RouterConfig and PolicyConfig; a setting left unset takes the library's default, and
    # a bad one is refused when the settings are read (router_config / policy_config)
    cost_weight: float | None = Field(None, description="quality points per US dollar")
    latency_weight: float | None = Field(None, description="quality points per second")
    reward_wait_s: float | None = Field(
        None, description="after this long without a reward, an event gets default_reward")
    default_reward: float | None = None
    store_task_text: bool | None = None
    checkpoint_every: int | None = Field(None, description="rewards between checkpoints")
    pacing_gain: float | None = Field(None, description="how hard budgets pace spend")
    alert_webhook_url: str | None = Field(None, description="budget alerts are POSTed here")
    task_clusters: tuple[int, ...] | None = Field(
        None, description="k-means codebook sizes of task embeddings ([] turns them off), "
                          "e.g. BANDIT_ROUTER_TASK_CLUSTERS='[4, 16]'")
    cluster_after: int | None = Field(None, description="rewarded tasks before they are fitted")
    learn_rate_per_tenant_per_min: float | None = Field(
        None, description="rewards per minute per key's tenant that the policy learns; past "
                          "it they are stored but not learned (a flood of extreme rewards "
                          "moves the policy at most this much); null: no limit")
    database_timeout_s: float | None = Field(
        None, description="longest wait of one database call for a lock or a connection "
                          "(then 503 with Retry-After)")
    memory_size: int | None = Field(
        None, description="past tasks the FAISS memory keeps (the oldest go first); from "
                          "65536 on it stores 8-bit codes (about 400 MB a million tasks)")
    exact_recall_limit: int | None = Field(
        None, description="remembered outcomes searched exactly; beyond, an IVF index "
                          "(null: always exact)")
    exploration: Literal["thompson", "squarecb", "epsilon", "softmax", "regcb"] | None = Field(
        None, description="thompson (the default): Thompson sampling per task cluster over "
                          "VW's regressor; or one of VW's explorations. Unset, squarecb when "
                          "one of its options (optimism, baseline_strength) is")
    thompson_scale: float | None = Field(
        None, description="Thompson sampling: the posterior's spread (higher explores more)")
    seed: int | None = None
    gamma_scale: float | None = Field(None, description="squareCB: higher explores less")
    elimination: bool | None = Field(None, description="removed (VW's squareCB elimination "
                                                       "no longer runs): true is refused")
    optimism: float | None = Field(None, description="squareCB: decision-time bonus for "
                                                     "models tried less (e.g. 0.2)")
    baseline_strength: float | None = Field(
        None, description="with optimism: rewards of a model after which VW's prediction and "
                          "its neighbours' estimate weigh the same (e.g. 10)")
    embedding_dims: int | None = Field(
        None, description="random projection of the embedding the policy sees")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576,
                                  description="largest request head (request line and headers)")
    header_timeout_s: float = Field(10.0, gt=0, le=3600, description="seconds a connection "
                                    "has to send a whole request head")
    body_timeout_s: float = Field(30.0, gt=0, le=3600, description="longest wait for the next "
                                  "part of a request body (408 after it)")
    gateway_timeout_s: float = Field(60.0, gt=0, le=3600, description="the gateway's wait for "
                                     "an upstream's answer (then it falls back)")
    cors_origins: list[str] = Field(
        [], description="browser origins allowed to call the API (CORS); none by default, "
                        "e.g. BANDIT_ROUTER_CORS_ORIGINS='[\"https://ops.example.com\"]'")
    rate_limit_per_s: float | None = Field(
        None, gt=0, description="select and reward requests per second per API key, in each "
                                "replica (429 with Retry-After beyond it); null: no limit")
    rate_limit_burst: int = Field(100, ge=1, description="requests a key may send at once "
                                                          "within its rate limit")
    auth: bool = Field(True, description="require API keys (turn off only on a trusted host)")
    key_cache_s: float = Field(
        5.0, ge=0, le=3600, description="how long a process trusts an API key it verified "
                                        "without reading the database again; a key revoked "
                                        "on another replica or by the CLI stops working here "
                                        "within it (0: read on every request)")
    learn_interval_s: float = Field(1.0, gt=0, description="learner wake-up at the latest")
    role: Literal["all", "api", "learner"] = Field(
        "all", description="all: serve and learn (one process); api: serve the model the "
                           "learner publishes, learn nothing; learner: serve too, and learn "
                           "and publish while it holds the learner lock (a standby follows "
                           "until the holder dies)")
    publish_interval_s: float = Field(
        1.0, gt=0, description="learner role: a model is published at most this often")
    follow_interval_s: float = Field(
        0.5, gt=0, description="api role (and a standby): how often to look for a newer "
                               "published model")
    embed_batch: int = Field(64, ge=1, description="most texts embedded in one batch")
    embed_wait_ms: float = Field(2.0, ge=0, description=(
        "longest wait for a batch to fill, under concurrent traffic (a lone request never waits)"))
    price_file: str | None = Field(
        None, description="a LiteLLM model_prices_and_context_window.json (or .gz) applied at "
                          "start-up and again whenever it changes")
    price_file_interval_s: float = Field(30.0, gt=0, description="how often to check it")
    load_balancing_file: str | None = Field(
        None, description="JSON: {strategy, deployments: [...], allowed_fails, cooldown_s}")
    fixed_model_alert_every_s: float = Field(
        600.0, ge=0, description="how often /v1/admin/alerts re-reads the log for the "
                                 "fixed-model alert (always one model beats the router; a "
                                 "scan of its window), serving the last answer meanwhile; "
                                 "0 turns it off")
    fixed_model_alert_window_s: float = Field(
        86400.0, gt=0, description="the fixed-model alert's window: the last day by default")

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

    @model_validator(mode="after")
    def _library_checks(self) -> Settings:
        try:
            self.router_config()
            self.policy_config()
            database_url(self.database_url)  # SQLite or PostgreSQL, before anything opens it
        except InvalidInputError as exc:  # a ValueError: pydantic reports it with the field
            raise ValueError(str(exc)) from None
        return self

    def _given(self, names: tuple[str, ...]) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names if name in self.model_fields_set}

    def router_config(self) -> RouterConfig:
        """The library router's configuration: the settings given, the library's defaults
        for the rest; the service learns in its background thread, not on requests."""
        given = self._given(ROUTER_SETTINGS)
        if given.get("task_clusters") is not None:
            given["task_clusters"] = tuple(given["task_clusters"])
        return RouterConfig(**given, maintenance_on_request=False)

    def policy_config(self) -> PolicyConfig:
        """The policy's configuration: the settings given, the library's defaults for the
        rest, and the exploration they imply (see :func:`bandit_router.implied_exploration`)."""
        given = self._given(POLICY_SETTINGS)
        exploration = implied_exploration(
            given.pop("exploration", None), optimism=given.get("optimism") or 0.0,
            elimination=bool(given.get("elimination")),
            baseline_strength=given.get("baseline_strength") or 0.0)
        return PolicyConfig(exploration=exploration, **given)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; tests override this dependency."""
    return Settings()

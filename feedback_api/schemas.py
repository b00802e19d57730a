"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bandit_router.eval.experiments import Comparison

from .event_ids import MAX_NAME

#: the longest unit key (an experiment's unit: a user or session id)
MAX_UNIT_KEY = 200

__all__ = [
    "ArmIn",
    "ArmOut",
    "Body",
    "ChatMessage",
    "ConstraintsIn",
    "ErrorBody",
    "ErrorOut",
    "EstimateOut",
    "EventOut",
    "ExperimentIn",
    "ExperimentOut",
    "ListedModelOut",
    "ModelListOut",
    "ModelOut",
    "PricingIn",
    "PromoteIn",
    "RewardIn",
    "RewardOut",
    "SelectIn",
]

ErrorKind = Literal["rate_limit", "server_error", "timeout", "context_length",
                    "content_filter", "invalid_response", "other"]


class Body(BaseModel):
    """A request body: unknown fields refused, numbers finite, and strict types."""

    #: strict: a JSON true or "0.5" is not a number, 3.0 is not a token count
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class ConstraintsIn(Body):
    max_cost_usd: float | None = Field(None, ge=0, examples=[0.0001])
    max_latency_s: float | None = Field(None, ge=0, examples=[5])
    min_quality: float | None = Field(None, ge=0, le=1)
    min_quality_strict: bool = Field(
        False, description="refuse (422) when no model is estimated to reach min_quality, "
                           "instead of routing to the highest estimate")
    preferred_providers: list[str] | None = None
    allowed_providers: list[str] | None = None
    excluded_providers: list[str] | None = None
    allowed_models: list[str] | None = None
    excluded_models: list[str] | None = None


class ChatMessage(BaseModel):
    """One chat message (OpenAI format); fields beyond role and content (name, tool calls)
    are accepted and ignored."""

    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class SelectIn(Body):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"task": "Translate 'Hello' to French",
                      "constraints": {"max_cost_usd": 0.0001, "max_latency_s": 5}}]})

    task: str | None = Field(None, description="the request text; embedded, stored only as "
                                               "a hash (or give messages)")
    messages: list[ChatMessage] | None = Field(
        None, min_length=1, max_length=1000,
        description="the request's chat messages instead of task (OpenAI format): the router "
                    "sees the last user turn first, then a compact view of the system prompt "
                    "and history")
    constraints: ConstraintsIn | None = None
    cost_weight: float | None = Field(None, ge=0, le=1e6,
                                      description="quality points per US dollar")
    latency_weight: float | None = Field(None, ge=0, le=1e6)
    input_tokens: int | None = Field(None, ge=1, le=100_000_000)
    metadata: dict[str, Any] | None = None
    unit_key: str | None = Field(None, max_length=MAX_UNIT_KEY,
                                 description="user or session id, for experiments")
    event_id: str | None = Field(None, pattern=rf"^[A-Za-z0-9._~:-]{{1,{MAX_NAME}}}$",
                                 description="name the event yourself (URL-safe characters); "
                                             "names are per API key")
    experiment: str | None = Field(None, max_length=64,
                                   description="route through this experiment's arm for "
                                               "unit_key (required with it)")

    @model_validator(mode="after")
    def _task_or_messages(self) -> SelectIn:
        if (self.task is None) == (self.messages is None):
            raise ValueError("give the task as task (text) or as messages (chat), not both")
        return self

    def prompt(self) -> str | list[dict[str, Any]]:
        """What the router selects for: the text, or the messages as plain dicts."""
        if self.messages is not None:
            return [m.model_dump(exclude_none=True) for m in self.messages]
        assert self.task is not None
        return self.task

    @field_validator("event_id")
    @classmethod
    def _addressable(cls, value: str | None) -> str | None:
        if value is not None and not value.strip("."):  # ``.`` and ``..``: path segments
            raise ValueError("an event id of only dots cannot be addressed over HTTP")
        return value


class RewardIn(Body):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"quality": 0.92, "cost_usd": 0.00004, "latency_s": 0.8},
                     {"thumbs": "up"}, {"error": "rate_limit"}]})

    quality: float | None = Field(None, ge=0, le=1,
                                  description="required unless error or thumbs is given")
    thumbs: Literal["up", "down"] | None = Field(
        None, description="a user's verdict instead of a score: up counts as quality 1, down "
                          "as 0")
    cost_usd: float | None = Field(None, ge=0, le=1e4)
    latency_s: float | None = Field(None, ge=0, le=1e5)
    output_tokens: int | None = Field(None, ge=0, le=10_000_000)
    error: ErrorKind | None = None


    @model_validator(mode="after")
    def _one_verdict(self) -> RewardIn:
        if self.thumbs is not None and self.quality is not None:
            raise ValueError("give quality or thumbs, not both")
        return self

    def score(self) -> float | None:
        """The quality to learn: the score given, or the thumbs' (up 1, down 0)."""
        if self.thumbs is not None:
            return 1.0 if self.thumbs == "up" else 0.0
        return self.quality


class RewardOut(BaseModel):
    accepted: bool = True
    event_id: str
    reward: float
    quality: float
    cost_usd: float
    latency_s: float | None
    policy_version: int = Field(description="rewards learned when this one was stored; "
                                            "it is learned in the background right after")
    held_back: bool = Field(False, description="stored and settled but not learned: this "
                                               "key's tenant is past learn_rate_per_tenant_"
                                               "per_min")


class EventOut(BaseModel):
    event_id: str
    created_at: float
    status: Literal["pending", "rewarded", "defaulted"]
    provider: str
    model: str
    probability: float
    cost_weight: float
    latency_weight: float
    input_tokens: int
    policy_version: int
    constraints: dict[str, Any]
    metadata: dict[str, Any]
    unit_key: str | None
    experiment: str | None = None
    arm: str | None = None
    eligible: list[str]
    estimates: dict[str, float]
    reward: dict[str, Any] | None


class ModelOut(BaseModel):
    provider: str
    model: str
    input_price_per_1m: float
    output_price_per_1m: float
    avg_latency: float
    quality_score: float
    context_window: int
    typical_output_tokens: int | None


class ListedModelOut(BaseModel):
    """One model in OpenAI's ``GET /v1/models`` format; ``catalog`` is the router's entry
    (None for ``bandit-router/auto``, the router itself)."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    catalog: ModelOut | None = None


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ListedModelOut]


class PricingIn(Body):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"input_price_per_1m": 0.15, "output_price_per_1m": 0.6}]})

    provider: str | None = Field(None, description="needed when several providers serve "
                                                   "the model")
    input_price_per_1m: float | None = Field(None, ge=0, le=100_000)
    output_price_per_1m: float | None = Field(None, ge=0, le=100_000)


class ErrorBody(BaseModel):
    type: str
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class ArmIn(Body):
    """An arm's definition: policy settings, and optionally a restriction to some catalog
    models (``models``) or to one (``fixed_model``: every decision of the arm is that model,
    with probability 1). Model names are ``provider/model`` or a model name."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{}, {"cost_weight": 50}, {"fixed_model": "openai/gpt-4o"},
                     {"models": ["gpt-4o-mini", "gpt-4.1-nano"], "exploration": "epsilon"},
                     {"strategy": "knn_greedy", "epsilon": 0.05}]})

    strategy: Literal["vw", "knn_greedy"] = Field(
        "vw", description="'vw': the Vowpal Wabbit policy (default); 'knn_greedy': greedy on "
                          "the nearest-neighbour estimates, no VW (exploration: epsilon)")
    exploration: Literal["thompson", "squarecb", "epsilon", "softmax", "regcb"] | None = None
    thompson_scale: float | None = Field(None, gt=0, le=10, description="Thompson sampling: "
                                         "the posterior's spread (higher explores more)")
    epsilon: float | None = Field(None, ge=0, le=1)
    gamma_scale: float | None = Field(None, gt=0, le=1e6)
    optimism: float | None = Field(None, ge=0, le=10, description="squareCB's decision-time "
                                                                  "bonus for models tried less")
    baseline_strength: float | None = Field(
        None, ge=0, le=1e6, description="with optimism: rewards of a model after which VW's "
                                        "prediction and its neighbours' estimate weigh the same")
    cost_weight: float | None = Field(None, ge=0, le=1e6)
    models: list[Annotated[str, Field(min_length=1, max_length=300)]] | None = Field(
        None, min_length=1, max_length=200,
        description="route only to these catalog models (applied to every request)")
    fixed_model: str | None = Field(None, min_length=1, max_length=300,
                                    description="always route to this catalog model "
                                                "(a control arm)")

    @model_validator(mode="after")
    def _one_restriction(self) -> ArmIn:
        if self.models is not None and self.fixed_model is not None:
            raise ValueError("an arm sets models or fixed_model, not both")
        return self


class ExperimentIn(Body):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"name": "cheaper", "arms": {"control": {}, "cheaper": {"cost_weight": 50}},
                      "shares": {"control": 0.5, "cheaper": 0.5}}]})

    name: str = Field(..., pattern=r"^[A-Za-z0-9._~-]{1,64}$")
    arms: dict[str, ArmIn] = Field(..., min_length=2, max_length=8)
    shares: dict[str, float] | None = None


class PromoteIn(Body):
    arm: str = Field(..., min_length=1, max_length=64)


class EstimateOut(BaseModel):
    value: float | None
    low: float | None
    high: float | None
    n: int


class ArmOut(BaseModel):
    share: float
    requests: int
    quality: EstimateOut
    cost_usd: EstimateOut
    reward: EstimateOut
    latency_s: EstimateOut | None = Field(None, description="null until a reward reports "
                                                            "latency")
    fixed_model: str | None = Field(None, description="the arm's one model, if fixed")
    models: list[str] | None = Field(None, description="the arm's models, if restricted")


class ExperimentOut(BaseModel):
    name: str
    status: Literal["running", "promoted", "stopped"]
    promoted: str | None
    control: str | None = Field(None, description="the first arm, the others' reference")
    arms: dict[str, ArmOut]
    comparisons: list[Comparison]  # the library's dataclass is the schema

"""The values the router hands back: decisions and reward receipts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ._deployment import Deployment

__all__ = ["Alternative", "Decision", "EventRecord", "RewardReceipt"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Alternative:
    """A model the policy did not pick, with its probability and estimates."""

    provider: str
    model: str
    probability: float
    estimated_cost_usd: float
    estimated_latency_s: float
    estimated_quality: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The router's answer to :meth:`Router.select`.

    ``probability`` is the chance the policy gave the chosen model (logged for off-policy
    evaluation). ``alternatives`` are the other eligible models, most probable first: the
    app's fallback chain if the chosen model fails. ``deployment`` is the endpoint to call
    when the model is load-balanced (:meth:`Router.set_load_balancing`), else ``None``.
    ``confidence`` in [0, 1] says how much
    measured evidence (similar past tasks) backs ``estimated_quality``, against the prior.
    """

    event_id: str
    provider: str
    model: str
    probability: float
    estimated_cost_usd: float
    estimated_latency_s: float
    estimated_quality: float
    confidence: float
    reasoning: str
    alternatives: tuple[Alternative, ...]
    input_tokens: int
    cost_weight: float
    policy_version: int
    created_at: float
    deployment: Deployment | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["alternatives"] = [asdict(a) for a in self.alternatives]
        out["deployment"] = self.deployment.to_dict() if self.deployment else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        fields = dict(data)
        fields["alternatives"] = tuple(Alternative(**a) for a in fields.get("alternatives", ()))
        if fields.get("deployment") is not None:
            fields["deployment"] = Deployment.from_dict(fields["deployment"])
        return cls(**fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardReceipt:
    """What :meth:`Router.reward` recorded: the reward value learned and the policy version."""

    event_id: str
    reward: float
    quality: float
    cost_usd: float
    latency_s: float | None
    policy_version: int
    #: stored, not learned: its tenant was past ``learn_rate_per_tenant_per_min``
    held_back: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """A logged decision as :meth:`Router.get_event` returns it, with its reward if any."""

    event_id: str
    created_at: float
    status: str
    provider: str
    model: str
    probability: float
    cost_weight: float
    latency_weight: float
    input_tokens: int
    policy_version: int
    constraints: dict[str, Any]
    metadata: dict[str, Any]
    eligible: list[str]
    estimates: dict[str, float]
    reward: dict[str, Any] | None
    #: the experiment arm whose router logged it (``Router(arm=...)``; ``""``: none)
    arm: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

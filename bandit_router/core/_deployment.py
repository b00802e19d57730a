"""What a deployment is: one endpoint serving a catalog model (:class:`Deployment`), how
load is balanced among a model's deployments (:class:`LoadBalancingConfig`), and how each is
doing (:class:`DeploymentStatus`). Plain validated values, shared by the router, the spend
layer's :class:`~bandit_router.spend._balancer.LoadBalancer` and the HTTP client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeVar, get_args

from ._errors import InvalidInputError

__all__ = ["FAILURE_KINDS", "WINDOW_S", "Deployment", "DeploymentStatus", "LoadBalancingConfig",
           "Strategy", "check_count", "check_number"]

Strategy = Literal["round_robin", "weighted", "least_latency", "least_busy"]
#: Error kinds that count against a deployment (the others are the request's fault).
FAILURE_KINDS = frozenset({"rate_limit", "server_error", "timeout"})  # a subset of ERROR_KINDS
_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WINDOW_S = 60.0
_T = TypeVar("_T")


def check_number(value: object, name: str, *, low: float = 0.0, high: float = math.inf,
            low_open: bool = True) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, int | float)
          and math.isfinite(value) and (value > low if low_open else value >= low)
          and value <= high)
    if not ok:
        raise InvalidInputError(f"{name} must be a finite number {'>' if low_open else '>='} "
                                f"{low:g}" + ("" if high == math.inf else f" and <= {high:g}"))


def check_count(value: object, name: str, *, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(f"{name} must be an integer >= {low}")


def _from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if set(data) - known:
        raise InvalidInputError(f"unknown {cls.__name__} fields {sorted(set(data) - known)}; "
                                f"known: {sorted(known)}")
    try:
        return cls(**dict(data))
    except TypeError as exc:  # a required field is missing
        raise InvalidInputError(f"bad {cls.__name__} {dict(data)!r}: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """One endpoint serving a catalog model.

    ``id`` is unique and URL-safe (1-64 of ``A-Z a-z 0-9 . _ ~ -``); ``model`` is the catalog
    key served (checked against the catalog by the router); ``provider`` is who serves it.
    ``api_key_env`` is the *name* of the environment variable that holds the API key, never
    the key itself, so deployments can be logged, stored and shown safely. ``weight`` (> 0)
    is used by the ``weighted`` strategy; ``rpm`` / ``tpm`` cap requests / tokens per 60 s.

    >>> d = Deployment(id="tg", model="meta/llama-3.1-70b", provider="together",
    ...                api_key_env="TOGETHER_API_KEY", rpm=600)
    >>> Deployment.from_dict(d.to_dict()) == d
    True
    """

    id: str
    model: str
    provider: str
    api_base: str | None = None
    api_key_env: str | None = None
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise InvalidInputError(f"deployment id {self.id!r} must be 1-64 characters "
                                    "of A-Z a-z 0-9 . _ ~ -")
        where = f"deployment {self.id}"
        provider, _, name = self.model.partition("/") if isinstance(self.model, str) else "//x"
        if not provider.strip() or not name.strip():
            raise InvalidInputError(f"{where}: model {self.model!r} must be a catalog key "
                                    "'provider/model'")
        if not isinstance(self.provider, str) or not self.provider.strip():
            raise InvalidInputError(f"{where}: provider must be a non-empty string")
        if self.api_base is not None and (not isinstance(self.api_base, str)
                                          or not self.api_base.startswith(("http://", "https://"))):
            raise InvalidInputError(f"{where}: api_base must be an http(s) URL")
        if self.api_key_env is not None and (not isinstance(self.api_key_env, str)
                                             or not _ENV_NAME.fullmatch(self.api_key_env)):
            raise InvalidInputError(f"{where}: api_key_env must be the NAME of an environment "
                                    "variable (letters, digits, _), not the key itself")
        check_number(self.weight, f"{where}: weight")
        for limit in ("rpm", "tpm"):
            if getattr(self, limit) is not None:
                check_count(getattr(self, limit), f"{where}: {limit}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployment:
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadBalancingConfig:
    """How a :class:`LoadBalancer` picks and when it cools a deployment down.

    >>> LoadBalancingConfig(strategy="least_busy").cooldown_s
    60.0
    """

    strategy: Strategy = "weighted"
    allowed_fails: int = 3
    fail_window_s: float = 60.0
    cooldown_s: float = 60.0
    latency_alpha: float = 0.2
    busy_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.strategy not in get_args(Strategy):
            raise InvalidInputError(f"strategy must be one of {list(get_args(Strategy))}")
        check_count(self.allowed_fails, "allowed_fails")
        for name in ("fail_window_s", "cooldown_s", "busy_timeout_s"):
            check_number(getattr(self, name), name)
        check_number(self.latency_alpha, "latency_alpha", high=1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadBalancingConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentStatus:
    """A snapshot of one deployment's health and load (see :meth:`LoadBalancer.status`)."""

    id: str
    model: str
    provider: str
    api_base: str | None
    weight: float
    healthy: bool
    cooldown_until: float | None
    recent_failures: int
    in_flight: int
    ewma_latency_s: float | None
    rpm_used: int
    tpm_used: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



"""Clients of the HTTP service, with the in-process :class:`Router`'s signatures.

Swap one line to move an app from the library to the service::

    router = Router()                                          # in process
    router = RouterClient("http://127.0.0.1:8000", api_key)    # over HTTP

``select()`` returns the same :class:`Decision`, ``reward()`` the same
:class:`RewardReceipt`, and errors arrive as the library's exception classes
(:class:`UnknownEventError`, :class:`DuplicateRewardError`, ...), plus
:class:`AuthenticationError` and :class:`PermissionDeniedError` for 401 and 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from . import _errors
from ._constraints import Constraints
from ._types import Decision, EventRecord, RewardReceipt

__all__ = ["AsyncRouterClient", "RouterClient"]

_BY_NAME: dict[str, type[_errors.BanditRouterError]] = {
    name: getattr(_errors, name) for name in _errors.__all__}
_SERVICE = {401: _errors.AuthenticationError, 403: _errors.PermissionDeniedError,
            413: _errors.PayloadTooLargeError}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()["error"]
        kind, message, details = body["type"], body["message"], body.get("details") or {}
    except (ValueError, KeyError, TypeError):
        kind, message, details = "", response.text[:500], {}
    if response.status_code in _SERVICE:
        raise _SERVICE[response.status_code](message, status=response.status_code)
    cls = _BY_NAME.get(kind)
    if cls is _errors.NoEligibleModelError:
        raise _errors.NoEligibleModelError(details.get("reasons", {}))
    if cls in (_errors.UnknownEventError, _errors.DuplicateRewardError,
               _errors.DuplicateEventError):
        raise cls(str(details.get("event_id", "")))  # type: ignore[call-arg]
    if cls is _errors.RewardWindowClosedError:
        raise _errors.RewardWindowClosedError(str(details.get("event_id", "")),
                                              float(details.get("wait_s", 0.0)))
    if kind == "RequestValidationError":
        raise _errors.InvalidInputError(message)
    if cls is not None and not issubclass(cls, _errors.ServiceError):
        raise cls(message)
    raise _errors.ServiceError(f"{response.status_code}: {message}",
                               status=response.status_code)


def _select_body(task: str, constraints: Constraints | None, cost_weight: float | None,
                 latency_weight: float | None, input_tokens: int | None,
                 metadata: Mapping[str, Any] | None, event_id: str | None,
                 unit_key: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"task": task}
    if constraints is not None:
        body["constraints"] = constraints.to_dict()
    for name, value in (("cost_weight", cost_weight), ("latency_weight", latency_weight),
                        ("input_tokens", input_tokens), ("event_id", event_id),
                        ("unit_key", unit_key)):
        if value is not None:
            body[name] = value
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


def _reward_body(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _receipt(data: dict[str, Any]) -> RewardReceipt:
    return RewardReceipt(event_id=data["event_id"], reward=data["reward"],
                         quality=data["quality"], cost_usd=data["cost_usd"],
                         latency_s=data["latency_s"], policy_version=data["policy_version"])


def _record(data: dict[str, Any]) -> EventRecord:
    known = EventRecord.__dataclass_fields__
    return EventRecord(**{k: v for k, v in data.items() if k in known})


def _decision(data: dict[str, Any]) -> Decision:
    known = Decision.__dataclass_fields__  # a newer server may add fields
    return Decision.from_dict({k: v for k, v in data.items() if k in known})


def _q(part: str) -> str:
    """One path segment, escaped: an id can never name another route."""
    return quote(str(part), safe="")


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class RouterClient:
    """Synchronous client of ``bandit-router serve``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key),
                                  timeout=timeout, transport=transport)

    def select(self, task: str, *, constraints: Constraints | None = None,
               cost_weight: float | None = None, latency_weight: float | None = None,
               input_tokens: int | None = None, metadata: Mapping[str, Any] | None = None,
               event_id: str | None = None, unit_key: str | None = None) -> Decision:
        r = self._http.post("/v1/select", json=_select_body(
            task, constraints, cost_weight, latency_weight, input_tokens, metadata, event_id,
            unit_key))
        _raise_for(r)
        return _decision(r.json())

    def reward(self, event_id: str, *, quality: float | None = None,
               cost_usd: float | None = None, latency_s: float | None = None,
               output_tokens: int | None = None, error: str | None = None) -> RewardReceipt:
        r = self._http.post(f"/v1/events/{_q(event_id)}/reward", json=_reward_body(
            quality=quality, cost_usd=cost_usd, latency_s=latency_s,
            output_tokens=output_tokens, error=error))
        _raise_for(r)
        return _receipt(r.json())

    def get_event(self, event_id: str) -> EventRecord:
        r = self._http.get(f"/v1/events/{_q(event_id)}")
        _raise_for(r)
        return _record(r.json())

    def get_routing_stats(self) -> dict[str, Any]:
        r = self._http.get("/v1/stats")
        _raise_for(r)
        result: dict[str, Any] = r.json()
        return result

    def update_pricing(self, provider: str, prices: Mapping[str, Mapping[str, float]]) -> None:
        for model, change in prices.items():
            r = self._http.put(f"/v1/models/{_q(provider)}/{_q(model)}/pricing", json=dict(change))
            _raise_for(r)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRouterClient:
    """The asynchronous twin of :class:`RouterClient`."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key),
                                       timeout=timeout, transport=transport)

    async def select(self, task: str, *, constraints: Constraints | None = None,
                     cost_weight: float | None = None, latency_weight: float | None = None,
                     input_tokens: int | None = None,
                     metadata: Mapping[str, Any] | None = None, event_id: str | None = None,
                     unit_key: str | None = None) -> Decision:
        r = await self._http.post("/v1/select", json=_select_body(
            task, constraints, cost_weight, latency_weight, input_tokens, metadata, event_id,
            unit_key))
        _raise_for(r)
        return _decision(r.json())

    async def reward(self, event_id: str, *, quality: float | None = None,
                     cost_usd: float | None = None, latency_s: float | None = None,
                     output_tokens: int | None = None,
                     error: str | None = None) -> RewardReceipt:
        r = await self._http.post(f"/v1/events/{_q(event_id)}/reward", json=_reward_body(
            quality=quality, cost_usd=cost_usd, latency_s=latency_s,
            output_tokens=output_tokens, error=error))
        _raise_for(r)
        return _receipt(r.json())

    async def get_event(self, event_id: str) -> EventRecord:
        r = await self._http.get(f"/v1/events/{_q(event_id)}")
        _raise_for(r)
        return _record(r.json())

    async def get_routing_stats(self) -> dict[str, Any]:
        r = await self._http.get("/v1/stats")
        _raise_for(r)
        result: dict[str, Any] = r.json()
        return result

    async def update_pricing(self, provider: str,
                             prices: Mapping[str, Mapping[str, float]]) -> None:
        for model, change in prices.items():
            r = await self._http.put(f"/v1/models/{_q(provider)}/{_q(model)}/pricing",
                                     json=dict(change))
            _raise_for(r)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

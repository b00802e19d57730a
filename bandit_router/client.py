"""Clients of the HTTP service, with the in-process :class:`Router`'s signatures.

Swap one line to move an app from the library to the service::

    router = Router()                                          # in process
    router = RouterClient("http://127.0.0.1:8000", api_key)    # over HTTP

``select()`` returns the same :class:`Decision`, ``reward()`` the same
:class:`RewardReceipt`, and errors arrive as the library's exception classes
(:class:`UnknownEventError`, :class:`DuplicateRewardError`, ...), plus
:class:`AuthenticationError` and :class:`PermissionDeniedError` for 401 and 403.

An admin key also drives A/B experiments (the ``/v1/experiments`` endpoints):
:meth:`RouterClient.create_experiment`, :meth:`~RouterClient.list_experiments`,
:meth:`~RouterClient.get_experiment` (live per-arm statistics and each arm against the
control), :meth:`~RouterClient.promote_experiment` and :meth:`~RouterClient.stop_experiment`
return the library's :class:`~bandit_router.eval.experiments.ExperimentReport`; apps route
through an experiment with ``select(task, experiment=name, unit_key=user_id)``::

    admin.create_experiment("vs-gpt-4o", {"bandit": {},
                                          "gpt-4o": {"fixed_model": "openai/gpt-4o"}})
    d = app.select(task, experiment="vs-gpt-4o", unit_key=user_id)
    admin.get_experiment("vs-gpt-4o").comparisons[0].significant
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar
from urllib.parse import quote, urlencode

import httpx

from .core import _errors
from .core._config import Exploration
from .core._constraints import Constraints
from .core._results import ArmStats, Comparison, Estimate, ExperimentReport
from .core._types import Decision, EventRecord, RewardReceipt

__all__ = ["ArmSpec", "AsyncRouterClient", "RouterClient"]

#: what ``select`` takes: the request's text, or its chat messages (OpenAI format)
Task = str | Sequence[Mapping[str, Any]]

_T = TypeVar("_T")

_BY_NAME: dict[str, type[_errors.BanditRouterError]] = {
    name: getattr(_errors, name) for name in _errors.__all__}
#: server-side classes with no library twin, raised as their library base class
_BY_NAME["UnknownExperimentError"] = _errors.UnknownModelError


class ArmSpec(TypedDict, total=False):
    """An experiment arm's definition, as ``POST /v1/experiments`` takes it: policy settings,
    and optionally ``models`` (route only to these catalog models) or ``fixed_model``
    (always this model, logged with probability 1). Every key is optional: ``{}`` is an arm
    with the service's own settings."""

    exploration: Exploration
    epsilon: float
    gamma_scale: float
    optimism: float
    cost_weight: float
    models: Sequence[str]
    fixed_model: str
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
    if cls is _errors.BudgetExceededError:
        try:
            raise _errors.BudgetExceededError(
                scope=str(details["scope"]), window=str(details["window"]),
                limit_usd=float(details["limit_usd"]), used_usd=float(details["used_usd"]),
                resets_at=None if details.get("resets_at") is None
                else float(details["resets_at"]), needed_usd=float(details["needed_usd"]))
        except (KeyError, TypeError, ValueError):
            raise _errors.ServiceError(f"{response.status_code}: {message}",
                                       status=response.status_code) from None
    if cls is not None and not issubclass(cls, _errors.ServiceError):
        raise cls(message)
    raise _errors.ServiceError(f"{response.status_code}: {message}",
                               status=response.status_code)


def _select_body(task: Task, constraints: Constraints | None, cost_weight: float | None,
                 latency_weight: float | None, input_tokens: int | None,
                 metadata: Mapping[str, Any] | None, event_id: str | None,
                 unit_key: str | None, experiment: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = ({"task": task} if isinstance(task, str)
                            else {"messages": [dict(m) for m in task]})
    if constraints is not None:
        body["constraints"] = constraints.to_dict()
    for name, value in (("cost_weight", cost_weight), ("latency_weight", latency_weight),
                        ("input_tokens", input_tokens), ("event_id", event_id),
                        ("unit_key", unit_key), ("experiment", experiment)):
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


def _experiment_body(name: str, arms: Mapping[str, ArmSpec],
                     shares: Mapping[str, float] | None) -> dict[str, Any]:
    def arm(spec: ArmSpec) -> dict[str, Any]:
        out: dict[str, Any] = dict(spec)
        models = out.get("models")
        if isinstance(models, Sequence) and not isinstance(models, str):
            out["models"] = list(models)  # a tuple is JSON too, but say what is meant
        return out

    body: dict[str, Any] = {"name": name, "arms": {a: arm(s) for a, s in arms.items()}}
    if shares is not None:
        body["shares"] = dict(shares)
    return body


def _estimate(data: Mapping[str, Any]) -> Estimate:
    """The service writes non-finite bounds (no data, one request) as null."""
    def number(key: str, missing: float) -> float:
        value = data.get(key)
        return float(value) if value is not None else missing

    return Estimate(value=number("value", math.nan), low=number("low", -math.inf),
                    high=number("high", math.inf), n=int(data["n"]))


def _experiment(data: dict[str, Any]) -> ExperimentReport:
    arms = {}
    for name, a in data["arms"].items():
        latency = a.get("latency_s")
        models = a.get("models")
        arms[name] = ArmStats(
            arm=name, share=float(a["share"]), requests=int(a["requests"]),
            quality=_estimate(a["quality"]), cost_usd=_estimate(a["cost_usd"]),
            latency_s=_estimate(latency) if latency is not None else None,
            reward=_estimate(a["reward"]), fixed_model=a.get("fixed_model"),
            models=tuple(models) if models is not None else None)
    known = Comparison.__dataclass_fields__
    comparisons = tuple(Comparison(**{k: v for k, v in c.items() if k in known})
                        for c in data.get("comparisons", ()))
    return ExperimentReport(name=data["name"], status=data["status"],
                            promoted=data.get("promoted"),
                            control=data.get("control") or next(iter(arms)), arms=arms,
                            comparisons=comparisons)


def _names(data: Any) -> list[str]:
    return [str(name) for name in data]


def _q(part: str) -> str:
    """One path segment, escaped: an id can never name another route."""
    return quote(str(part), safe="")


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


@dataclass(frozen=True, slots=True)
class _Call(Generic[_T]):
    """One request of the API, and how its answer is read: each is described once, here, and
    sent by either client."""

    method: str
    path: str
    read: Callable[[Any], _T]
    json: Any = None


def _none(_: Any) -> None:
    """The answer is not read (an update that returns nothing the caller needs)."""
    return None


def _as_dict(data: Any) -> dict[str, Any]:
    return dict(data)


class _Calls:
    """The API's requests, by method name (the clients' methods send these)."""

    @staticmethod
    def select(task: Task, constraints: Constraints | None, cost_weight: float | None,
               latency_weight: float | None, input_tokens: int | None,
               metadata: Mapping[str, Any] | None, event_id: str | None,
               unit_key: str | None, experiment: str | None) -> _Call[Decision]:
        return _Call("POST", "/v1/select", _decision, _select_body(
            task, constraints, cost_weight, latency_weight, input_tokens, metadata, event_id,
            unit_key, experiment))

    @staticmethod
    def reward(event_id: str, quality: float | None, cost_usd: float | None,
               latency_s: float | None, output_tokens: int | None,
               error: str | None) -> _Call[RewardReceipt]:
        return _Call("POST", f"/v1/events/{_q(event_id)}/reward", _receipt, _reward_body(
            quality=quality, cost_usd=cost_usd, latency_s=latency_s,
            output_tokens=output_tokens, error=error))

    @staticmethod
    def get_event(event_id: str) -> _Call[EventRecord]:
        return _Call("GET", f"/v1/events/{_q(event_id)}", _record)

    @staticmethod
    def get_routing_stats(since: float | None = None) -> _Call[dict[str, Any]]:
        query = "" if since is None else "?" + urlencode({"since": repr(float(since))})
        return _Call("GET", f"/v1/stats{query}", _as_dict)

    @staticmethod
    def update_pricing(provider: str,
                       prices: Mapping[str, Mapping[str, float]]) -> list[_Call[None]]:
        return [_Call("PUT", f"/v1/models/{_q(provider)}/{_q(model)}/pricing", _none,
                      dict(change)) for model, change in prices.items()]

    @staticmethod
    def create_experiment(name: str, arms: Mapping[str, ArmSpec],
                          shares: Mapping[str, float] | None) -> _Call[ExperimentReport]:
        return _Call("POST", "/v1/experiments", _experiment,
                     _experiment_body(name, arms, shares))

    @staticmethod
    def list_experiments() -> _Call[list[str]]:
        return _Call("GET", "/v1/experiments", _names)

    @staticmethod
    def get_experiment(name: str) -> _Call[ExperimentReport]:
        return _Call("GET", f"/v1/experiments/{_q(name)}", _experiment)

    @staticmethod
    def promote_experiment(name: str, arm: str) -> _Call[ExperimentReport]:
        return _Call("POST", f"/v1/experiments/{_q(name)}/promote", _experiment, {"arm": arm})

    @staticmethod
    def stop_experiment(name: str) -> _Call[ExperimentReport]:
        return _Call("POST", f"/v1/experiments/{_q(name)}/stop", _experiment)


class RouterClient:
    """Synchronous client of ``bandit-router serve``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key),
                                  timeout=timeout, transport=transport)

    def _send(self, call: _Call[_T]) -> _T:
        r = self._http.request(call.method, call.path, json=call.json)
        _raise_for(r)
        return call.read(None if call.read is _none else r.json())

    def select(self, task: Task, *, constraints: Constraints | None = None,
               cost_weight: float | None = None, latency_weight: float | None = None,
               input_tokens: int | None = None, metadata: Mapping[str, Any] | None = None,
               event_id: str | None = None, unit_key: str | None = None,
               experiment: str | None = None) -> Decision:
        """As :meth:`Router.select`; with ``experiment`` (and ``unit_key``, a user or
        session id), the experiment's arm for the unit decides."""
        return self._send(_Calls.select(task, constraints, cost_weight, latency_weight,
                                        input_tokens, metadata, event_id, unit_key,
                                        experiment))

    def reward(self, event_id: str, *, quality: float | None = None,
               cost_usd: float | None = None, latency_s: float | None = None,
               output_tokens: int | None = None, error: str | None = None) -> RewardReceipt:
        """As :meth:`Router.reward`."""
        return self._send(_Calls.reward(event_id, quality, cost_usd, latency_s,
                                        output_tokens, error))

    def get_event(self, event_id: str) -> EventRecord:
        """The logged decision and its reward, if any."""
        return self._send(_Calls.get_event(event_id))

    def get_routing_stats(self, *, since: float | None = None) -> dict[str, Any]:
        """As :meth:`Router.get_routing_stats` (admin)."""
        return self._send(_Calls.get_routing_stats(since))

    def update_pricing(self, provider: str, prices: Mapping[str, Mapping[str, float]]) -> None:
        """As :meth:`Router.update_pricing` (admin), one request a model."""
        for call in _Calls.update_pricing(provider, prices):
            self._send(call)

    # -- experiments (admin) -------------------------------------------------------------------
    def create_experiment(self, name: str, arms: Mapping[str, ArmSpec], *,
                          shares: Mapping[str, float] | None = None) -> ExperimentReport:
        """Start an A/B experiment; the first arm is the control. A model name the catalog
        lacks raises :class:`UnknownModelError`, an existing name or bad settings
        :class:`InvalidInputError`."""
        return self._send(_Calls.create_experiment(name, arms, shares))

    def list_experiments(self) -> list[str]:
        """The names of the service's experiments."""
        return self._send(_Calls.list_experiments())

    def get_experiment(self, name: str) -> ExperimentReport:
        """Live per-arm statistics and each arm against the control; an unknown name raises
        :class:`UnknownModelError` (the service's ``UnknownExperimentError``)."""
        return self._send(_Calls.get_experiment(name))

    def promote_experiment(self, name: str, arm: str) -> ExperimentReport:
        """Send all of the experiment's new traffic to ``arm``."""
        return self._send(_Calls.promote_experiment(name, arm))

    def stop_experiment(self, name: str) -> ExperimentReport:
        """End the experiment: all its new traffic to the control."""
        return self._send(_Calls.stop_experiment(name))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRouterClient:
    """The asynchronous twin of :class:`RouterClient`: the same requests (``_Calls``), sent
    with ``await``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key),
                                       timeout=timeout, transport=transport)

    async def _send(self, call: _Call[_T]) -> _T:
        r = await self._http.request(call.method, call.path, json=call.json)
        _raise_for(r)
        return call.read(None if call.read is _none else r.json())

    async def select(self, task: Task, *, constraints: Constraints | None = None,
                     cost_weight: float | None = None, latency_weight: float | None = None,
                     input_tokens: int | None = None,
                     metadata: Mapping[str, Any] | None = None, event_id: str | None = None,
                     unit_key: str | None = None, experiment: str | None = None) -> Decision:
        return await self._send(_Calls.select(task, constraints, cost_weight, latency_weight,
                                              input_tokens, metadata, event_id, unit_key,
                                              experiment))

    async def reward(self, event_id: str, *, quality: float | None = None,
                     cost_usd: float | None = None, latency_s: float | None = None,
                     output_tokens: int | None = None,
                     error: str | None = None) -> RewardReceipt:
        return await self._send(_Calls.reward(event_id, quality, cost_usd, latency_s,
                                              output_tokens, error))

    async def get_event(self, event_id: str) -> EventRecord:
        return await self._send(_Calls.get_event(event_id))

    async def get_routing_stats(self, *, since: float | None = None) -> dict[str, Any]:
        return await self._send(_Calls.get_routing_stats(since))

    async def update_pricing(self, provider: str,
                             prices: Mapping[str, Mapping[str, float]]) -> None:
        for call in _Calls.update_pricing(provider, prices):
            await self._send(call)

    # -- experiments (admin) -------------------------------------------------------------------
    async def create_experiment(self, name: str, arms: Mapping[str, ArmSpec], *,
                                shares: Mapping[str, float] | None = None
                                ) -> ExperimentReport:
        return await self._send(_Calls.create_experiment(name, arms, shares))

    async def list_experiments(self) -> list[str]:
        return await self._send(_Calls.list_experiments())

    async def get_experiment(self, name: str) -> ExperimentReport:
        return await self._send(_Calls.get_experiment(name))

    async def promote_experiment(self, name: str, arm: str) -> ExperimentReport:
        return await self._send(_Calls.promote_experiment(name, arm))

    async def stop_experiment(self, name: str) -> ExperimentReport:
        return await self._send(_Calls.stop_experiment(name))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

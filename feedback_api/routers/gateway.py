"""POST /v1/chat/completions: an OpenAI-compatible gateway that routes, calls the chosen
deployment's upstream, falls back on failure and closes the loop itself.

``model`` is ``bandit-router/auto`` (or ``auto``): the router picks among the catalog models
that have a deployment with an ``api_base``; ``bandit-router/<experiment>``: the experiment's
arm for the request's ``user`` (OpenAI's end-user id; else the API key) picks, sticky as on
``/v1/select``; ``bandit-router/<experiment>/<arm>``: that arm picks; or a catalog model
(``provider/model`` or its name), which is passed through and still logged. Constraints may
ride along in the body as ``"bandit_router": {"constraints": {...}}`` (the OpenAI SDKs'
``extra_body``).

Each attempt is a logged decision. A 429, a 5xx, a timeout or a connection error is that
decision's outcome (its reward: the error, quality 0; the deployment's failure counts toward
its cooldown), and the next attempt is a new decision among the models not tried yet. A
success is observed at once (cost from the upstream's ``usage`` at the catalog's prices,
latency, time to first token) and learned when the quality arrives through the event id
(``POST /v1/events/{id}/reward``), or with the default reward after the wait. Headers carry
the decision: ``x-bandit-router-event-id``, ``-model``, ``-probability``,
``-estimated-cost-usd`` and, when the body is not streamed, ``-cost-usd``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from bandit_router import (
    Constraints,
    Decision,
    InvalidConstraintsError,
    InvalidTaskError,
    ModelSpec,
    NoEligibleModelError,
    Router,
    UnknownModelError,
)
from bandit_router.eval.experiments import Experiment

from ..deps import ExperimentsDep, LearnerDep, MetricsDep, RateLimitedKey, RouterDep
from ..errors import error_response, malformed_json
from ..experiments import ExperimentRegistry
from ..keys import ApiKey
from ..learner import BackgroundLearner
from ..metrics import Metrics
from ..schemas import MAX_UNIT_KEY, ErrorOut
from ..timing import Timing, timed

router = APIRouter(prefix="/v1", tags=["gateway"])
log = logging.getLogger("feedback_api")

PREFIX = "bandit-router"
AUTO = (f"{PREFIX}/auto", "auto")
#: upstream statuses that are the deployment's fault: fall back
_FAILURES = {429: "rate_limit"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut} for s in (400, 401, 403, 404, 408, 413, 422, 429, 502)}


def _upstream_error(status: int) -> str | None:
    if status in _FAILURES:
        return _FAILURES[status]
    return "server_error" if status >= 500 else None


def _callable(lib: Router) -> set[str]:
    """Catalog keys the gateway can call: those with a deployment that has an api_base (the
    balancer picks the deployment each decision uses)."""
    return {d.model for d in lib.deployment_status() if d.api_base}


@dataclass(frozen=True)
class _Route:
    """Who decides: the main router, or an experiment (its arm for the unit, or ``arm``)."""

    experiment: Experiment | None = None
    arm: str | None = None


def _route(model: str, experiments: ExperimentRegistry) -> _Route | None:
    """The route ``model`` names: the router (``bandit-router/auto``), an experiment
    (``bandit-router/<name>``) or one of its arms (``bandit-router/<name>/<arm>``, checked,
    and followed while the experiment runs, by :meth:`Experiment.select`); ``None`` for
    anything else (a catalog model, perhaps)."""
    if model in AUTO:
        return _Route()
    if not model.startswith(PREFIX + "/"):
        return None
    name, _, arm = model[len(PREFIX) + 1:].partition("/")
    experiment, _ = experiments.get(name)  # UnknownExperimentError: 404 with its name
    return _Route(experiment, arm or None)


def _targets(lib: Router, model: Any, callable_: set[str],
             experiments: ExperimentRegistry) -> tuple[list[str], _Route]:
    if not isinstance(model, str) or not model:
        raise InvalidTaskError("model must name the router (bandit-router/auto) or a model")
    # a catalog key first (a provider may be named bandit-router), then the routed names
    route = None if model in lib.catalog.model_keys() else _route(model, experiments)
    if route is not None:
        if not callable_:
            raise UnknownModelError("no deployment has an api_base: give the load balancing "
                                    "settings deployments with api_base to use the gateway")
        return sorted(callable_), route
    keys = [s.key for s in lib.catalog if model in (s.key, s.model)]
    if not keys:
        raise UnknownModelError(f"model {model!r} is neither bandit-router/auto nor in the "
                                "catalog")
    reachable = [k for k in keys if k in callable_]
    if not reachable:
        raise UnknownModelError(f"model {model!r} has no deployment with an api_base")
    return reachable, _Route()


def _cost(spec: ModelSpec, usage: Any) -> tuple[float | None, int | None]:
    """Cost in US dollars and output tokens from an OpenAI ``usage`` object."""
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None, None
    return ((prompt * spec.input_price_per_1m + completion * spec.output_price_per_1m) / 1e6,
            completion)


def _headers(d: Decision, timing: Timing, cost: float | None = None) -> dict[str, str]:
    out = {"x-bandit-router-event-id": d.event_id,
           "x-bandit-router-model": f"{d.provider}/{d.model}",
           "x-bandit-router-probability": f"{d.probability:.6g}",
           "x-bandit-router-estimated-cost-usd": f"{d.estimated_cost_usd:.6g}",
           # the decisions' time (one per model tried), not the upstream's
           "server-timing": timing.header()}
    if cost is not None:
        out["x-bandit-router-cost-usd"] = f"{cost:.6g}"
    return out


class _Attempt:
    """One decision's upstream call."""

    def __init__(self, lib: Router, learner: BackgroundLearner, metrics: Metrics,
                 d: Decision, spec: ModelSpec) -> None:
        self.lib, self.learner, self.metrics, self.d, self.spec = lib, learner, metrics, d, spec
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    async def failed(self, kind: str, *, cost_usd: float | None = 0.0) -> None:
        """The decision's outcome: the upstream failed (quality 0; counts toward the
        deployment's cooldown). ``cost_usd=None``: what it cost is not known (a stream
        broken off part way, perhaps billed), so the decision's estimate stands."""
        receipt = await run_in_threadpool(
            self.lib.reward, self.d.event_id, error=kind, cost_usd=cost_usd,
            latency_s=min(self.elapsed(), 1e5), learn=False)
        self.learner.notify()
        self.metrics.reward(error=kind, quality=0.0, model=self.spec.key,
                            cost_usd=receipt.cost_usd)

    async def observed(self, usage: Any, ttft: float | None) -> float | None:
        cost, tokens = _cost(self.spec, usage)
        await run_in_threadpool(self.lib.observe, self.d.event_id, cost_usd=cost,
                                latency_s=self.elapsed(), output_tokens=tokens, ttft_s=ttft)
        return cost


async def _decide(lib: Router, route: _Route, key: ApiKey, messages: Any, unit: str,
                  targets: list[str], constraints: Constraints | None
                  ) -> tuple[Decision, Timing]:
    allowed = set(targets)
    if constraints is not None and constraints.allowed_models:
        allowed &= set(constraints.allowed_models)
    merged = replace(constraints or Constraints(), allowed_models=frozenset(allowed))
    meta: dict[str, Any] = {"owner": key.tenant, "unit_key": None, "user": {}, "via": "gateway"}
    if route.experiment is None:
        return await run_in_threadpool(timed, lib, partial(
            lib.select, messages, constraints=merged, metadata=meta, tenant=key.tenant_tag))
    return await run_in_threadpool(timed, lib, partial(
        route.experiment.select, messages, unit_key=unit, arm=route.arm,
        constraints=merged, metadata={**meta, "unit_key": unit}, tenant=key.tenant_tag))


def _all_failed(tried: list[str]) -> Response:
    return error_response(502, "UpstreamError", "every model tried failed: " + ", ".join(tried),
                          {"tried": tried})


@router.post("/chat/completions", responses=_ERRORS)  # type: ignore[arg-type]
async def chat_completions(request: Request, key: RateLimitedKey, lib: RouterDep,
                           learner: LearnerDep, metrics: MetricsDep,
                           experiments: ExperimentsDep) -> Response:
    """OpenAI's chat completions: routed, called, fallen back, observed (see the module)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return malformed_json("the body is not valid JSON")
    if not isinstance(body, dict):
        raise InvalidTaskError("the body must be a chat completions request object")
    extra = body.pop("bandit_router", None) or {}
    if not isinstance(extra, dict) or set(extra) - {"constraints"}:
        raise InvalidTaskError("bandit_router may carry only constraints")
    try:
        constraints = Constraints(**extra["constraints"]) if extra.get("constraints") else None
    except TypeError as exc:
        raise InvalidConstraintsError(str(exc)) from None
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidTaskError("messages must be a list of chat messages")
    stream = body.get("stream") is True
    targets, route = _targets(lib, body.get("model"), _callable(lib), experiments)
    user = body.get("user")  # OpenAI's end-user id: an experiment's unit
    if user is not None and not (isinstance(user, str) and 0 < len(user) <= MAX_UNIT_KEY):
        raise InvalidTaskError(f"user must be a string of 1 to {MAX_UNIT_KEY} characters")
    unit = user if user is not None else key.tag
    settings = request.app.state.settings
    tried: list[str] = []
    timing = Timing()
    client: httpx.AsyncClient = request.app.state.upstream
    while True:
        left = [t for t in targets if t not in tried]
        if not left:
            return _all_failed(tried)
        try:
            d, took = await _decide(lib, route, key, messages, unit, left, constraints)
        except NoEligibleModelError:
            if not tried:
                raise
            return _all_failed(tried)  # those left are outside the constraints, or down
        timing += took
        metrics.observe_select(took.embed_s, took.route_s)
        model_key = f"{d.provider}/{d.model}"
        tried.append(model_key)
        deployment = d.deployment
        if deployment is None or not deployment.api_base:
            continue
        spec = lib.catalog.get(model_key)
        metrics.decisions.labels(model_key).inc()
        attempt = _Attempt(lib, learner, metrics, d, spec)
        upstream_body = {**body, "model": spec.model}
        if stream:
            upstream_body["stream_options"] = {**(body.get("stream_options") or {}),
                                               "include_usage": True}
        headers = {"content-type": "application/json"}
        secret = os.environ.get(deployment.api_key_env) if deployment.api_key_env else None
        if secret:
            headers["authorization"] = f"Bearer {secret}"
        url = deployment.api_base.rstrip("/") + "/chat/completions"
        try:
            upstream = await client.send(
                client.build_request("POST", url, json=upstream_body, headers=headers,
                                     timeout=settings.gateway_timeout_s), stream=True)
        except httpx.TimeoutException:
            await attempt.failed("timeout")
            continue
        except httpx.HTTPError as exc:
            log.warning("upstream %s unreachable: %s", deployment.id, exc)
            await attempt.failed("server_error")
            continue
        kind = _upstream_error(upstream.status_code)
        if kind is not None:
            await upstream.aclose()
            await attempt.failed(kind)
            continue
        if upstream.status_code >= 400:  # the request's fault: the caller sees the answer
            content = await upstream.aread()
            await upstream.aclose()
            return Response(content, status_code=upstream.status_code,
                            headers=_headers(d, timing),
                            media_type=upstream.headers.get("content-type"))
        if not stream:
            try:
                content = await upstream.aread()
            except httpx.HTTPError:
                await upstream.aclose()
                await attempt.failed("timeout")
                continue
            await upstream.aclose()
            try:
                answer = json.loads(content)
            except ValueError:
                await attempt.failed("invalid_response")
                continue
            cost = await attempt.observed(answer.get("usage"), None)
            return JSONResponse(answer, headers=_headers(d, timing, cost))
        return StreamingResponse(_relay(upstream, attempt), headers=_headers(d, timing),
                                 media_type="text/event-stream")


async def _relay(upstream: httpx.Response, attempt: _Attempt) -> AsyncIterator[bytes]:
    """Pass the upstream's server-sent events through as they arrive; observe the call
    (time to first token, latency, the usage of its last chunk) when it ends. A stream the
    upstream breaks off (a read error or timeout before ``[DONE]``) is the decision's outcome
    (``server_error`` or ``timeout``, as a failed call before it), and the caller's stream is
    broken off too, so that the SDK raises instead of returning half an answer."""
    ttft: float | None = None
    usage: Any = None
    pending = b""
    observed = False

    async def observe() -> None:
        nonlocal observed
        observed = True
        try:
            await attempt.observed(usage, ttft)
        except Exception:  # the answer goes out anyway; a lost observation is logged
            log.exception("observing event %s failed", attempt.d.event_id)

    try:
        try:
            async for chunk in upstream.aiter_raw():
                if ttft is None:
                    ttft = attempt.elapsed()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                done = False
                for line in lines:
                    if line.startswith(b"data: {"):
                        with contextlib.suppress(ValueError):
                            usage = json.loads(line[6:]).get("usage") or usage
                    done = done or line.strip() == b"data: [DONE]"
                if done and not observed:  # before the caller can see the end (and reward it)
                    await observe()
                yield chunk
        except httpx.HTTPError as exc:
            if observed:  # the answer was whole: only its goodbye was lost
                return
            observed = True
            log.warning("upstream stream of event %s broke off: %s", attempt.d.event_id, exc)
            try:
                await attempt.failed("timeout" if isinstance(exc, httpx.TimeoutException)
                                     else "server_error", cost_usd=None)
            except Exception:
                log.exception("recording the broken stream of event %s failed",
                              attempt.d.event_id)
            raise
    finally:
        await upstream.aclose()
        if not observed:
            await observe()

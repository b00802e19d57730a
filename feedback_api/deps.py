"""Dependencies: the router, the metrics, the scheduled checks and the caller's API key.

Those that only read the app's state (or an in-memory rate limit) are ``async``: FastAPI runs
a plain ``def`` dependency in its thread pool, a hop per dependency per request, which under
load cost more than the reads themselves. Checking the key is ``async`` too: a key verified
within ``key_cache_s`` is at hand; only otherwise does the check go to the pool to read the
database."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from bandit_router import Router

from .checks import FixedModelCheck
from .experiments import ExperimentRegistry
from .keys import ApiKey, KeyStore
from .learner import BackgroundLearner
from .limits import RateLimiter
from .metrics import Metrics
from .settings import Settings

__all__ = ["AdminKey", "ClientKey", "ExperimentsDep", "FixedModelCheckDep", "LearnerDep",
           "MetricsDep", "RateLimitedKey", "RouterDep"]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key")
_OPEN = ApiKey(id=0, name="auth disabled", scope="admin", prefix="", created_at=0.0,
               revoked_at=None)


async def get_router(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_experiments(request: Request) -> ExperimentRegistry:
    registry: ExperimentRegistry = request.app.state.experiments
    return registry


async def get_fixed_model_check(request: Request) -> FixedModelCheck:
    check: FixedModelCheck = request.app.state.fixed_model_check
    return check


async def get_learner(request: Request) -> BackgroundLearner:
    learner: BackgroundLearner = request.app.state.learner
    return learner


async def _caller(request: Request,
                  bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
                  header: Annotated[str | None, Security(_header)]) -> ApiKey:
    settings: Settings = request.app.state.settings
    if not settings.auth:
        return _OPEN
    secret = bearer.credentials if bearer is not None else header
    if not secret:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' or "
                                 "'X-API-Key: <key>' (create one with 'bandit-router keys "
                                 "create')", headers={"WWW-Authenticate": "Bearer"})
    keys: KeyStore = request.app.state.keys
    key = keys.cached(secret)
    if key is None:
        key = await run_in_threadpool(keys.verify, secret)
    if key is None:
        raise HTTPException(401, "unknown or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return key


async def _require_admin(key: Annotated[ApiKey, Depends(_caller)]) -> ApiKey:
    if key.scope != "admin":
        raise HTTPException(403, "this call needs an API key with the 'admin' scope")
    return key


async def _within_rate(request: Request, key: Annotated[ApiKey, Depends(_caller)]) -> ApiKey:
    """The caller's key, unless it is over its request rate (429 with ``Retry-After``)."""
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is not None:
        wait = limiter.wait_s(key.tag)
        if wait > 0:
            raise HTTPException(429, f"over this key's rate limit of {limiter.rate_per_s:g} "
                                     f"requests per second: retry after {wait:.2f} s",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return key


RouterDep = Annotated[Router, Depends(get_router)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LearnerDep = Annotated[BackgroundLearner, Depends(get_learner)]
FixedModelCheckDep = Annotated[FixedModelCheck, Depends(get_fixed_model_check)]
ExperimentsDep = Annotated[ExperimentRegistry, Depends(get_experiments)]
ClientKey = Annotated[ApiKey, Depends(_caller)]  # client or admin
RateLimitedKey = Annotated[ApiKey, Depends(_within_rate)]  # client or admin, rate-limited
AdminKey = Annotated[ApiKey, Depends(_require_admin)]

"""The application factory."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from bandit_router import (
    BatchingEmbedder,
    Catalog,
    InvalidInputError,
    LearnerLock,
    PolicyConfig,
    Router,
    TimedEmbedder,
    __version__,
    make_embedder,
)
from bandit_router.core.policies import KNNGreedyPolicy, Policy, VWPolicy

from . import errors
from .checks import FixedModelCheck
from .experiments import ExperimentRegistry
from .keys import KeyStore
from .learner import BackgroundLearner
from .limits import RateLimiter
from .metrics import Metrics
from .middleware import BodyLimit, RequestMetrics, SecurityHeaders
from .routers import (
    dashboard,
    events,
    experiments,
    gateway,
    models,
    ops,
    reports,
    select,
    spend,
)
from .settings import Settings, get_settings

__all__ = ["build_router", "create_app", "stop_embedding_worker"]

log = logging.getLogger("feedback_api")


def build_router(settings: Settings) -> Router:
    """The library router the settings describe (loads the embedder: seconds). Outside the
    ``all`` role it starts as a follower: an ``api`` replica stays one, a ``learner`` takes
    over when it gets the learner lock."""
    catalog = Catalog.from_file(settings.catalog_path) if settings.catalog_path else None
    inner = make_embedder(settings.embedder)
    # requests embed on many threads at once: one batch is far cheaper than many singles;
    # timed per thread, so a response can tell its embedding from its routing (timing.py)
    embedder = TimedEmbedder(BatchingEmbedder(inner, max_batch=settings.embed_batch,
                                              max_wait_s=settings.embed_wait_ms / 1000))
    return Router(
        database_url=settings.database_url, catalog=catalog, embedder=embedder,
        policy=settings.policy_config(), config=settings.router_config(),
        follow=settings.role != "all")


def stop_embedding_worker(router: Router) -> None:
    """Stop the batching worker of a router :func:`build_router` made, once it embeds no
    more (after :meth:`Router.close`)."""
    if isinstance(router.embedder.inner, TimedEmbedder):
        router.embedder.inner.close()


def _configure_providers(router: Router, settings: Settings) -> None:
    """Load balancing from its file, and the LiteLLM price file (watched for changes)."""
    if settings.load_balancing_file:
        try:
            spec = json.loads(Path(settings.load_balancing_file).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInputError(
                f"load_balancing_file {settings.load_balancing_file}: {exc}") from exc
        if not isinstance(spec, dict):
            raise InvalidInputError("load_balancing_file must hold a JSON object")
        router.set_load_balancing(spec.pop("strategy", "round_robin"),
                                  providers=spec.pop("deployments", []), **spec)
    if settings.price_file:
        router.watch_prices(settings.price_file, interval_s=settings.price_file_interval_s)


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from the files fastapi-offline ships, under
    ``/docs-static``: FastAPI's own pages load them from a CDN, and render blank offline."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="bandit-router API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="bandit-router API",
                              redoc_js_url="/docs-static/redoc.standalone.js",
                              redoc_favicon_url="/docs-static/favicon.png", with_google_fonts=False)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout_s = settings.router_config().database_timeout_s  # (every store waits so)
        app.state.keys = KeyStore(settings.database_url, cache_s=settings.key_cache_s,
                                  timeout_s=timeout_s)
        router = build_router(settings)  # embedder, FAISS memory and policy load once, here
        _configure_providers(router, settings)

        def make_arm(tag: str, spec: dict[str, Any]) -> Router:
            """An experiment arm: the main router's catalog and embedder, its own policy."""
            spec = dict(spec)
            base = (router.policy.config if isinstance(router.policy, VWPolicy)
                    else PolicyConfig())
            policy: PolicyConfig | Policy
            if spec.pop("strategy", "vw") == "knn_greedy":
                policy = KNNGreedyPolicy(epsilon=spec.get("epsilon", 0.05), seed=base.seed)
            else:
                if "exploration" not in spec and (spec.get("optimism") or spec.get(
                        "elimination") or spec.get("baseline_strength")):
                    spec["exploration"] = "squarecb"  # squareCB's options mean squareCB
                if spec.get("exploration", base.exploration) != "squarecb":
                    # the service's squareCB options are for squareCB arms only
                    spec.setdefault("optimism", 0.0)
                    spec.setdefault("baseline_strength", 0.0)
                policy = replace(base, **{k: v for k, v in spec.items() if k != "cost_weight"})
            config = replace(router.config, cost_weight=spec.get("cost_weight",
                                                                 router.config.cost_weight))
            # as the main router: outside "all" it follows until the leading learner's next
            # pass takes it over (BackgroundLearner._take_over_followers)
            arm = Router(database_url=settings.database_url, catalog=router.catalog,
                         embedder=router.embedder.inner, policy=policy, config=config,
                         arm=tag, follow=settings.role != "all")
            arm.share_load_balancing(router)  # the same deployments (the gateway calls them)
            return arm

        learner = BackgroundLearner(
            router, metrics, interval_s=settings.learn_interval_s,
            others=lambda: app.state.experiments.routers(), role=settings.role,
            lock=(LearnerLock(settings.database_url, timeout_s=timeout_s)
                  if settings.role == "learner" else None),
            publish_interval_s=settings.publish_interval_s,
            follow_interval_s=settings.follow_interval_s,
            reload=lambda: app.state.experiments.reload())
        app.state.experiments = ExperimentRegistry(settings.database_url, make_arm,
                                                   timeout_s=timeout_s)
        app.state.router, app.state.learner = router, learner
        learner.start()
        if settings.auth and not app.state.keys.list():
            log.warning("no API keys yet: create one with "
                        "'bandit-router keys create --scope admin'")
        # the gateway's connections to the upstreams, pooled
        app.state.upstream = httpx.AsyncClient(limits=httpx.Limits(max_connections=200))
        # what start-up loaded lives as long as the service: out of the collector's full
        # passes, which otherwise walk it all (a 70 ms pause in a select() loop, 12 with it)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # collectable again once the service lets it go
            await app.state.upstream.aclose()
            try:
                learner.stop()  # learns what was stored, then the router checkpoints on close
            finally:
                try:
                    app.state.experiments.close()
                    router.close()
                finally:
                    stop_embedding_worker(router)
                    app.state.keys.close()

    app = FastAPI(
        title="bandit-router",
        version=__version__,
        summary="Routes each LLM request to a model and learns online from feedback.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: the box may have no internet
        redoc_url=None,
    )
    _offline_docs(app)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.fixed_model_check = FixedModelCheck(
        every_s=settings.fixed_model_alert_every_s,
        window_s=settings.fixed_model_alert_window_s)
    app.state.limiter = (RateLimiter(rate_per_s=settings.rate_limit_per_s,
                                     burst=settings.rate_limit_burst)
                         if settings.rate_limit_per_s is not None else None)
    errors.install(app)
    for module in (select, events, gateway, models, experiments, ops, spend, reports,
                   dashboard):
        app.include_router(module.router)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       timeout_s=settings.body_timeout_s)
    if settings.cors_origins:  # closed unless the operator names the origins
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    return app

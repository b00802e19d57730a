"""The provider half of :class:`~bandit_router.Router`'s API: deployments and load balancing,
and prices from a LiteLLM price file (kept apart to keep modules small)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from ..core._catalog import Catalog
from ..core._deployment import Deployment, DeploymentStatus, LoadBalancingConfig, Strategy
from ..core._errors import InvalidInputError, UnknownModelError
from ..core._store import Store
from ..spend._balancer import LoadBalancer
from ..spend._prices import PriceFileWatcher, PriceImport, apply_price_file

__all__ = ["HEALTH_SYNC_S", "ProviderMethods"]

log = logging.getLogger("bandit_router")


def _deployment_id(key: str) -> str:
    """A deployment id for a catalog key (``provider/model`` -> ``provider.model``, other
    characters outside the id alphabet as ``_``, at most 64)."""
    return re.sub(r"[^A-Za-z0-9._~-]", "_", key.replace("/", ".", 1))[:64]


#: How often a router reads the cooldowns other processes recorded (seconds).
HEALTH_SYNC_S = 1.0


class ProviderMethods:
    """``set_load_balancing``, ``deployment_status``, ``load_prices`` and ``watch_prices``;
    deployment cooldowns shared through the database."""

    catalog: Catalog
    store: Store
    _balancer: LoadBalancer | None
    _watchers: list[PriceFileWatcher]
    _clock: Callable[[], float]
    _health_read_at: float = float("-inf")

    def _report_call(self, deployment_id: str, *, ref: str, latency_s: float | None,
                     error: str | None) -> None:
        """A call's outcome to the balancer; a cooldown it starts is recorded in the database,
        so that every process sharing it stops calling that deployment too."""
        if self._balancer is None:
            return
        try:
            until = self._balancer.report(deployment_id, ref=ref, latency_s=latency_s,
                                          error=error, tokens=None)
        except UnknownModelError:  # since removed from the balancer
            return
        if until is not None:
            try:
                self.store.add_cooldown(deployment_id, until, self._clock())
            except SQLAlchemyError as exc:  # this process keeps its own cooldown anyway
                log.warning("cooldown of %s not shared: %s", deployment_id, exc)

    def _sync_health(self) -> None:
        """Apply the cooldowns other processes recorded, at most every HEALTH_SYNC_S."""
        if self._balancer is None or not self._balancer.models():
            return
        now = self._clock()
        if now - self._health_read_at < HEALTH_SYNC_S:
            return
        self._health_read_at = now
        try:
            self._balancer.apply_cooldowns(self.store.cooldowns(now))
        except SQLAlchemyError as exc:
            log.warning("shared cooldowns not read: %s", exc)

    if TYPE_CHECKING:  # provided by Router
        def update_pricing(self, provider: str,
                           prices: Mapping[str, Mapping[str, float]]) -> None: ...

    def set_load_balancing(self, strategy: Strategy = "round_robin",
                           providers: Sequence[str | Deployment | Mapping[str, Any]] = (), *,
                           allowed_fails: int = 3, fail_window_s: float = 60.0,
                           cooldown_s: float = 60.0) -> list[DeploymentStatus]:
        """Serve catalog models through several deployments (provider + endpoint + key
        name) and spread calls over them with ``strategy``: ``round_robin``, ``weighted``,
        ``least_latency`` (measured latency in rewards) or ``least_busy`` (decisions still
        waiting for their reward).

        A reward whose ``error`` is ``rate_limit``, ``server_error`` or ``timeout`` counts
        against the deployment; ``allowed_fails`` of them within ``fail_window_s`` cool it
        down for ``cooldown_s``. A model whose deployments are all cooling down or at their
        ``rpm``/``tpm`` limits is not eligible until one recovers. Health is kept in this
        process (each replica learns it from the rewards it receives). Called again, it
        re-configures in place: deployments that remain keep their health.

        An entry of ``providers`` is a :class:`Deployment` (or its mapping) or a provider's
        name: ``providers=["openai", "anthropic", "gemini"]`` (the original design's call)
        gives each catalog model of those providers one deployment, ``provider.model``. With
        one deployment a model, the strategy has nothing to choose between; what it buys is
        failover across providers: a provider's model that keeps failing cools down and the
        policy routes among the others meanwhile. The router never sends a request to a model
        it thinks worse only to even out load across providers; to spread one model's calls,
        list its deployments.

        >>> from bandit_router import Constraints, Router
        >>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
        >>> r = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
        >>> _ = r.set_load_balancing("round_robin", providers=[
        ...     {"id": "a", "model": "budget/tiny", "provider": "host-a"},
        ...     {"id": "b", "model": "budget/tiny", "provider": "host-b"}])
        >>> d = r.select("hi", constraints=Constraints(allowed_models=["budget/tiny"]))
        >>> d.deployment.id
        'a'
        >>> r.close()
        """
        if isinstance(providers, str):
            raise InvalidInputError("providers must be a list (of provider names or "
                                    "deployments), not a string")
        deployments = [d for p in providers for d in self._deployments_of(p)]
        if not deployments:
            raise InvalidInputError("set_load_balancing needs at least one deployment")
        unknown = sorted({d.model for d in deployments} - set(self.catalog.model_keys()))
        if unknown:
            raise UnknownModelError(f"deployments name models not in the catalog: {unknown}")
        config = LoadBalancingConfig(strategy=strategy, allowed_fails=allowed_fails,
                                     fail_window_s=fail_window_s, cooldown_s=cooldown_s)
        if self._balancer is None:
            self._balancer = LoadBalancer(deployments, config=config, clock=self._clock)
        else:
            self._balancer.set_deployments(deployments, config=config)
        return self._balancer.status()

    def share_load_balancing(self, other: ProviderMethods) -> None:
        """Call models through ``other``'s deployments and their health from now on: one
        balancer for several routers of one process (the HTTP service's experiment arms share
        its main router's), so that a deployment cooling down, or at its limits, is avoided
        by all of them, and a later :meth:`set_load_balancing` on any of them applies to
        all."""
        if other._balancer is None:  # an empty one now, filled by a later configuration
            other._balancer = LoadBalancer([], config=LoadBalancingConfig(), clock=other._clock)
        self._balancer = other._balancer

    def _deployments_of(self, entry: str | Deployment | Mapping[str, Any]) -> list[Deployment]:
        """A deployment, or for a provider's name one deployment of each catalog model it
        serves (id ``provider.model``)."""
        if isinstance(entry, Deployment):
            return [entry]
        if isinstance(entry, str):
            specs = [s for s in self.catalog if s.provider == entry]
            if not specs:
                providers = sorted({s.provider for s in self.catalog})
                raise UnknownModelError(f"no catalog model is served by provider {entry!r} "
                                        f"(providers: {providers})")
            return [Deployment(id=_deployment_id(s.key), model=s.key, provider=s.provider)
                    for s in specs]
        if not isinstance(entry, Mapping):
            raise InvalidInputError("each entry of providers must be a provider's name, a "
                                    f"Deployment or a mapping, not {type(entry).__name__}")
        return [Deployment.from_dict(entry)]

    def deployment_status(self) -> list[DeploymentStatus]:
        """Each deployment's health: cooldown, recent failures, in-flight calls, latency,
        requests and tokens in the last minute; cooldowns that other processes sharing the
        database started included."""
        self._sync_health()
        return self._balancer.status() if self._balancer is not None else []

    def load_prices(self, path: str | os.PathLike[str], *,
                    aliases: Mapping[str, str] | None = None) -> PriceImport:
        """Apply the prices of a LiteLLM-format price table
        (``model_prices_and_context_window.json``, plain or gzipped) to the catalog's models;
        stored like :meth:`update_pricing`, in effect from the next decision."""
        return apply_price_file(self, path, aliases=aliases)

    def watch_prices(self, path: str | os.PathLike[str], *, interval_s: float = 30.0,
                     aliases: Mapping[str, str] | None = None) -> PriceFileWatcher:
        """Load a LiteLLM price file now and again whenever its content changes (checked
        every ``interval_s`` in a daemon thread, stopped by :meth:`close`)."""
        watcher = PriceFileWatcher(path, lambda: self.load_prices(path, aliases=aliases),
                                   interval_s=interval_s, fire_initial=True)
        watcher.check()
        watcher.start()
        self._watchers.append(watcher)
        return watcher

    def _stop_watchers(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self._watchers.clear()

"""The :class:`Router`: ``select()`` a model for a task, then ``reward()`` what happened."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from ..core import _namespaces as ns
from ..core._catalog import Catalog, ModelSpec
from ..core._config import PolicyConfig, RouterConfig
from ..core._constraints import Constraints, Estimate, RoutingConstraints, filter_eligible
from ..core._embedding import CachedEmbedder, Embedder, task_hash
from ..core._errors import (
    ERROR_KINDS,
    CatalogError,
    DuplicateEventError,
    DuplicateRewardError,
    InvalidInputError,
    InvalidRewardError,
    InvalidTaskError,
    NoEligibleModelError,
    RewardWindowClosedError,
    UnknownEventError,
)
from ..core._events import action_records, event_row
from ..core._features import estimate_tokens, task_features
from ..core._learner import Learner, write_checkpoint
from ..core._messages import task_of
from ..core._objective import Objective
from ..core._onnx import make_embedder
from ..core._scoring import (
    BASELINE,
    CROSSED_ONLY,
    EVIDENCE,
    GROUPS,
    LEARNED_RANGE,
    PINNED,
    action_features,
)
from ..core._sql import Writer
from ..core._store import (
    EventConflict,
    EventRow,
    LearnItem,
    ObservationRow,
    PriceRow,
    RewardConflict,
    RewardRow,
    Store,
    new_row,
)
from ..core._throttle import TokenBuckets
from ..core._types import Alternative, Decision, EventRecord, RewardReceipt
from ..core._validation import (
    MAX_ABS_REWARD,
    MAX_EVENT_ID,
    MAX_LATENCY_S,
    check_id,
    check_input_tokens,
    check_metadata,
    check_names,
    check_reward,
    check_task,
    check_time,
    check_weight,
    finite,
    storable,
)
from ..core.policies import Policy, VWPolicy
from ..spend._balancer import LoadBalancer
from ..spend._guard import SpendGuard
from ..spend._prices import PriceFileWatcher
from ._budgets import BudgetMethods
from ._providers import ProviderMethods

__all__ = ["DEFAULT_DATABASE_URL", "ERROR_KINDS", "Router"]

log = logging.getLogger("bandit_router")

DEFAULT_DATABASE_URL = "sqlite:///bandit_router.db"


#: Rewards a standby learns per batch when it takes over (decisions go on between batches).
_TAKE_OVER_BATCH = 500


def _check_event_id(event_id: object) -> None:
    """An id no event can have (not a string, empty, too long, a NUL) is unknown, whatever
    the store holds: :class:`UnknownEventError` without a read."""
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID \
            or "\x00" in event_id:
        raise UnknownEventError(str(event_id)[:MAX_EVENT_ID])


def _draw(seed: int, event_id: str) -> float:
    """A uniform number in [0, 1) fixed by the policy seed and the event id."""
    digest = hashlib.sha256(f"{seed}:{event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class Router(BudgetMethods, ProviderMethods):
    """Routes each task to a model and learns online from rewards.

    >>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
    >>> router = Router(database_url="sqlite://", catalog=demo_catalog(),
    ...                 embedder=HashEmbedder())
    >>> d = router.select("Translate 'Hello' to French",
    ...                   constraints=Constraints(max_cost_usd=0.01))
    >>> d.model in {m.model for m in demo_catalog()}
    True
    >>> router.reward(d.event_id, quality=0.9, cost_usd=0.0001, latency_s=0.8).policy_version
    1
    >>> router.close()

    Every decision and reward is committed to the database before the call returns. On
    start-up the router restores the newest valid checkpoint and learns the rewards logged
    after it; without a usable checkpoint it relearns the whole log.

    Several processes on one database: by default each learns the whole log. With
    ``follow=True`` a router learns nothing itself and serves the model another process
    publishes (:meth:`refresh` loads it; :meth:`publish` writes one); :class:`LearnerLock`
    says which process learns, and :meth:`take_over` turns a follower into that learner.
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        catalog: Catalog | str | None = None,
        embedder: Embedder | None = None,
        policy: PolicyConfig | Policy | None = None,
        config: RouterConfig | None = None,
        clock: Callable[[], float] = time.time,
        arm: str = "",
        follow: bool = False,
    ) -> None:
        self.config = config or RouterConfig()
        self._clock = clock
        if arm != "" and not storable(arm, max_chars=64):
            raise InvalidTaskError("arm must be a string of at most 64 characters, without "
                                   "NUL or lone surrogates")
        self.arm = arm
        self._lock = threading.RLock()
        if isinstance(catalog, str):
            catalog = Catalog.from_file(catalog)
        self.catalog = catalog or Catalog.default()
        self.store = Store(database_url or DEFAULT_DATABASE_URL,
                           timeout_s=self.config.database_timeout_s)
        self._price_id = 0
        self._apply_stored_prices()
        self._balancer: LoadBalancer | None = None
        self._watchers: list[PriceFileWatcher] = []
        self._spend = SpendGuard(self.store, clock=clock, pacing_gain=self.config.pacing_gain,
                                 webhook_url=self.config.alert_webhook_url)
        inner = embedder or make_embedder()
        self.embedder = CachedEmbedder(inner, size=self.config.embedding_cache_size)
        dim = self.embedder.dim
        if isinstance(policy, Policy):
            self.policy: Policy = policy
        else:
            self.policy = VWPolicy(policy or PolicyConfig(), input_dim=dim, pinned=PINNED,
                                   crossed_only=CROSSED_ONLY, baseline=BASELINE,
                                   groups=GROUPS, learned_range=LEARNED_RANGE,
                                   evidence=(*EVIDENCE, self.config.prior_strength))
        self._learner = Learner(store=self.store, policy=self.policy, dim=dim,
                                config=self.config, embedder_name=self.embedder.name,
                                clock=clock, arm=arm)
        #: a follower learns nothing itself: it serves the model another process publishes
        self.following = follow
        self._learner.restore(learn=not follow)
        self._next_expiry_check = 0.0
        rate = self.config.learn_rate_per_tenant_per_min
        #: each tenant's learning allowance (RouterConfig.learn_rate_per_tenant_per_min)
        self._learn_buckets = (None if rate is None else TokenBuckets(
            rate_per_s=rate / 60.0, burst=max(1, round(rate / 10)), clock=clock))

    # -- select ------------------------------------------------------------------------------
    def select(self, task: str | Sequence[Mapping[str, Any]], *,
               constraints: Constraints | None = None,
               cost_weight: float | None = None, latency_weight: float | None = None,
               input_tokens: int | None = None,
               metadata: Mapping[str, Any] | None = None,
               event_id: str | None = None, tenant: str | None = None) -> Decision:
        """Pick a model for ``task`` under ``constraints``; the decision is logged first.

        ``task`` is the request's text, or its chat messages (the OpenAI format: a list of
        ``{"role", "content"}``): the router then sees the last user turn first and a compact
        view of the system prompt and history (see ``bandit_router.core._messages``), so
        requests that share a long prompt prefix still differ, and it estimates the input
        tokens from every message.

        ``cost_weight``/``latency_weight`` override the router's for this request.
        ``input_tokens`` replaces the four-characters-a-token estimate when known.
        ``event_id`` lets the caller name the event (as Personalizer's Rank API does); the
        exploration draw is derived from it, so a replay that names its events is
        reproducible. By default it is a random UUID. ``tenant`` (a team, customer or API
        key) is whose budgets apply and whose spend this is.

        Budgets (:meth:`set_budget`) exclude models whose estimated cost would break a limit
        and pace the cost weight; :class:`BudgetExceededError` when nothing fits.
        """
        prompt_chars = None
        if isinstance(task, list | tuple):
            task, prompt_chars = task_of(task)
        task = check_task(task, max_chars=self.config.max_task_chars)
        constraints = constraints or Constraints()
        if not isinstance(constraints, Constraints):
            raise InvalidTaskError("constraints must be a Constraints instance")
        lam = check_weight(cost_weight, self.config.cost_weight, "cost_weight")
        mu = check_weight(latency_weight, self.config.latency_weight, "latency_weight")
        n_tokens = check_input_tokens(input_tokens)
        n_in = (n_tokens if n_tokens is not None
                else estimate_tokens(task) if prompt_chars is None
                else estimate_tokens(chars=prompt_chars))
        meta = check_metadata(metadata)
        if tenant is not None:
            tenant = check_id(tenant, "tenant")
        event_id = uuid.uuid4().hex if event_id is None else check_id(event_id, "event_id")
        if self.config.maintenance_on_request:
            self._maybe_expire()
        # float32, as the event stores it: the policy learns from the same numbers
        embedding = np.asarray(self.embedder.embed([task])[0], np.float32)
        features = task_features(task)
        self._sync_health()  # other processes' cooldowns: a read, so outside the lock
        now = self._clock()
        with self._lock:
            check_names(constraints, self.catalog)
            specs = list(self.catalog)
            estimates = self._learner.estimates(specs, embedding, n_in)
            allowed = filter_eligible(specs, estimates, constraints, input_tokens=n_in,
                                      unavailable=self._unavailable(n_in))
            eligible, reasons = allowed.eligible, allowed.reasons
            if not eligible:
                raise NoEligibleModelError(reasons)
            base_lam = lam
            plan = self._spend.plan(specs, estimates, eligible, tenant=tenant, cost_weight=lam)
            eligible, reasons, lam = plan.eligible, {**reasons, **plan.reasons}, plan.cost_weight
            actions = [action_features(specs[i], estimates[i], cost_weight=lam,
                                       latency_weight=mu) for i in eligible]
            stored_context = self._learner.task_context(embedding, features)
            context = {ns.EMBEDDING: embedding, **stored_context}
            choice = self.policy.decide(context, actions, draw=_draw(self.policy.seed, event_id))
            index, probability, pmf = choice.chosen, choice.probability, choice.pmf
            self._learner.keep_memo(event_id, choice.memo)
            version = self._learner.learned
        reference = max(specs, key=lambda s: (s.quality_score, s.output_price_per_1m))
        ref_est = estimates[specs.index(reference)]
        chosen = eligible[index]
        spec, est = specs[chosen], estimates[chosen]
        deployment = None
        if self._balancer is not None and spec.key in self._balancer.models():
            deployment = self._balancer.pick(
                spec.key, draw=_draw(self.policy.seed + 1, event_id), ref=event_id,
                tokens=int(n_in + est.output_tokens))
        event = event_row(
            id=event_id, created_at=now, status="pending", task_hash=task_hash(task),
            task_text=task if self.config.store_task_text else None,
            embedder=self.embedder.name, embedding=embedding, context=stored_context,
            actions=action_records([specs[i] for i in eligible],
                                   [estimates[i] for i in eligible], actions),
            chosen=index, probability=probability, pmf=pmf, cost_weight=lam,
            latency_weight=mu, input_tokens=n_in, reference_key=reference.key,
            reference_cost_usd=ref_est.cost_usd, constraints=constraints.to_dict(),
            policy_version=version, meta=meta, arm=self.arm, tenant=tenant,
            reserved_usd=est.cost_usd, deployment=deployment.id if deployment else None)
        try:
            self.store.add_event(event, also=self._spend.reserve(
                model_key=spec.key, tenant=tenant, amount=est.cost_usd, created_at=now,
                recheck=self._spend.hard_budgets(spec, tenant)))
        except BaseException as exc:
            if deployment is not None and self._balancer is not None:
                self._balancer.cancel(deployment.id, event_id)  # no call will follow
            if isinstance(exc, EventConflict):
                raise DuplicateEventError(event_id) from None
            raise
        self._spend.after_decision(spec, tenant, plan, est.cost_usd)
        order = sorted(range(len(eligible)), key=lambda j: -pmf[j])
        alternatives = tuple(
            Alternative(provider=specs[eligible[j]].provider, model=specs[eligible[j]].model,
                        probability=pmf[j],
                        estimated_cost_usd=estimates[eligible[j]].cost_usd,
                        estimated_latency_s=estimates[eligible[j]].latency_s,
                        estimated_quality=estimates[eligible[j]].quality)
            for j in order if j != index)
        return Decision(
            event_id=event_id, provider=spec.provider, model=spec.model,
            probability=probability, estimated_cost_usd=est.cost_usd,
            estimated_latency_s=est.latency_s, estimated_quality=est.quality,
            confidence=est.evidence,
            reasoning=self._reasoning(spec, est, probability, len(eligible), reasons,
                                      allowed.preferred)
            + (f"; no model is estimated to reach min_quality {constraints.min_quality:g}: "
               "the highest estimate was chosen" if allowed.quality_fallback else "")
            + (f"; cost weight paced from {base_lam:.3g} to {lam:.3g} by budgets"
               if lam != base_lam else "")
            + ("; every model broke a budget: cheapest chosen" if plan.forced else ""),
            alternatives=alternatives, input_tokens=n_in, cost_weight=lam,
            policy_version=version, created_at=now, deployment=deployment)

    def _unavailable(self, n_in: int) -> Callable[[ModelSpec, Estimate], str | None] | None:
        """Why a model cannot take a call now: it is load-balanced and no deployment of it is
        available (cooling down, here or in another process, or at its rpm/tpm limit for this
        request's tokens)."""
        balancer = self._balancer
        if balancer is None:
            return None
        balanced = balancer.models()

        def why(spec: ModelSpec, est: Estimate) -> str | None:
            if spec.key in balanced and not balancer.available(
                    spec.key, tokens=int(n_in + est.output_tokens)):
                return "every deployment is cooling down or at its rpm/tpm limit"
            return None
        return why

    @staticmethod
    def _reasoning(spec: ModelSpec, est: Estimate, probability: float, n_eligible: int,
                   reasons: Mapping[str, str], preferred: bool) -> str:
        text = (f"{spec.key} chosen with probability {probability:.2f} among {n_eligible} "
                f"eligible model(s): estimated quality {est.quality:.2f} "
                f"(evidence {est.evidence:.2f}), cost ${est.cost_usd:.6f}, "
                f"latency {est.latency_s:.1f}s")
        if reasons:
            text += f"; {len(reasons)} excluded by constraints"
        if preferred:
            text += "; narrowed to preferred providers"
        return text

    # -- reward ------------------------------------------------------------------------------
    def reward(self, event_id: str, *, quality: float | None = None,
               cost_usd: float | None = None, latency_s: float | None = None,
               output_tokens: int | None = None, error: str | None = None,
               learn: bool = True) -> RewardReceipt:
        """Record what happened to a decision and learn from it.

        ``quality`` in [0, 1] is required unless ``error`` names a failed call (one of
        :data:`ERROR_KINDS`), which counts as quality 0. Without ``cost_usd`` the cost is
        computed from ``output_tokens`` at the prices of the decision, or else estimated.
        The earliest reward of an event wins: a second one raises
        :class:`DuplicateRewardError`; one after ``reward_wait_s`` raises
        :class:`RewardWindowClosedError`.

        With ``learn=False`` the reward is only made durable; the policy learns it at the
        next :meth:`sync` (the HTTP service does this from one background learner thread, so
        requests never wait for learning).
        """
        quality, cost_usd, latency_s, output_tokens = check_reward(
            quality, cost_usd, latency_s, output_tokens, error)
        _check_event_id(event_id)
        # an event this process just logged is at hand; whether it has a reward by now is
        # decided by the reward table's unique constraint when the reward is written
        event = self.store.recent_event(event_id)
        at_hand = (event is not None
                   and self._clock() - event.created_at <= self.config.reward_wait_s)
        if not at_hand:
            event, existing = self.store.get_event_and_reward(event_id)
            if event is None:
                raise UnknownEventError(event_id)
            self._raise_if_closed(event, existing)
        assert event is not None
        action = event.actions[event.chosen]
        if cost_usd is None or latency_s is None or output_tokens is None:
            seen = self.store.get_observation(event_id)  # what the gateway measured
            if seen is not None:
                cost_usd = cost_usd if cost_usd is not None else seen.cost_usd
                latency_s = latency_s if latency_s is not None else seen.latency_s
                output_tokens = (output_tokens if output_tokens is not None
                                 else seen.output_tokens)
        if cost_usd is None:
            if output_tokens is not None:
                cost_usd = (event.input_tokens * action["input_price_per_1m"]
                            + output_tokens * action["output_price_per_1m"]) / 1e6
            else:
                cost_usd = float(action["estimate"]["cost_usd"])
        lat = latency_s if latency_s is not None else float(action["estimate"]["latency_s"])
        value = Objective(event.cost_weight, event.latency_weight).reward(quality, cost_usd, lat)
        if not abs(value) <= MAX_ABS_REWARD:
            if at_hand:  # a reward already given is reported first, as when read
                self._raise_if_closed(event, self.store.get_reward(event_id))
            raise InvalidRewardError(
                f"the reward {Objective.FORMULA} = "
                f"{value:g} is outside [-{MAX_ABS_REWARD:g}, {MAX_ABS_REWARD:g}]")
        # whether the reward's transaction saw an observation: the last try is the one
        # committed (a write may be tried again, e.g. alone after a failed group)
        observed: list[bool] = []

        def settled(conn: Writer) -> float | None:
            found, cost = self.store.observed(conn, event_id)
            observed.append(found)
            return cost

        held_back = (self._learn_buckets is not None
                     and self._learn_buckets.wait_s(event.tenant or "") > 0)
        row = new_row(RewardRow, event_id=event_id, received_at=self._clock(),
                      quality=float(quality), cost_usd=float(cost_usd), latency_s=latency_s,
                      output_tokens=output_tokens, error=error, reward=value, is_default=False,
                      held_back=held_back)
        try:
            seq = self.store.add_reward(row, status="rewarded", also=self._spend.settle(
                model_key=event.model_key, tenant=event.tenant, reserved=event.reserved_usd,
                cost=float(cost_usd), created_at=event.created_at, settled=settled))
        except BaseException as exc:
            if self._learn_buckets is not None and not held_back:  # nothing was learned
                self._learn_buckets.refund(event.tenant or "")
            if not isinstance(exc, RewardConflict):
                raise
            if at_hand and self.store.get_event(event_id) is None:  # deleted meanwhile
                raise UnknownEventError(event_id) from None
            self._raise_if_closed(event, self.store.get_reward(event_id), check_time=False)
            raise DuplicateRewardError(event_id) from None
        was_observed = bool(observed) and observed[-1]
        if event.deployment is not None and (not was_observed or error is not None):
            # (an observed call was reported when observed; a failure said later still counts)
            self._report_call(event.deployment, ref=event_id, latency_s=latency_s, error=error)
        if not learn or self.following:
            if at_hand and not self.following:  # sync() learns it from here, not the log
                self._learner.keep(LearnItem(row, event))
            return RewardReceipt(event_id=event_id, reward=value, quality=float(quality),
                                 cost_usd=float(cost_usd), latency_s=latency_s,
                                 policy_version=self._learner.learned, held_back=held_back)
        with self._lock:
            self._learner.learn_new(seq, row, event)
            version = self._learner.learned
        self._checkpoint_if_due()
        return RewardReceipt(event_id=event_id, reward=value, quality=float(quality),
                             cost_usd=float(cost_usd), latency_s=latency_s,
                             policy_version=version, held_back=held_back)

    def observe(self, event_id: str, *, cost_usd: float | None = None,
                latency_s: float | None = None, output_tokens: int | None = None,
                ttft_s: float | None = None) -> None:
        """Record what a decision's call cost and took as soon as it ends, before its quality
        is known (a partial reward: the gateway does this). Nothing is learned yet: the
        reward, when it comes with the quality, uses these figures for whatever it leaves
        out, and is learned once; without one by ``reward_wait_s``, the default reward
        keeps them. The decision's spend is settled at ``cost_usd`` now (budgets and cost
        reports count it from here on) and its deployment's load balancer hears the call's
        latency. A second observation replaces the first; an event already rewarded raises
        :class:`DuplicateRewardError` (or :class:`RewardWindowClosedError`).
        """
        _, cost_usd, latency_s, output_tokens = check_reward(
            0.0, cost_usd, latency_s, output_tokens, None)
        if ttft_s is not None and not (finite(ttft_s) and 0 <= ttft_s <= MAX_LATENCY_S):
            raise InvalidRewardError(f"ttft_s must be a number in [0, {MAX_LATENCY_S:g}]")
        _check_event_id(event_id)
        event, existing = self.store.get_event_and_reward(event_id)
        if event is None:
            raise UnknownEventError(event_id)
        self._raise_if_closed(event, existing)
        row = new_row(ObservationRow, event_id=event_id, observed_at=self._clock(),
                      cost_usd=cost_usd, latency_s=latency_s,
                      ttft_s=None if ttft_s is None else float(ttft_s),
                      output_tokens=output_tokens)
        try:  # the spend is settled at the observed cost now, not when the quality comes
            self.store.observe(row, also=self._spend.settle(
                model_key=event.model_key, tenant=event.tenant, reserved=event.reserved_usd,
                cost=cost_usd, created_at=event.created_at,
                settled=lambda conn: self.store.observed(conn, event_id)[1]))
        except RewardConflict:  # rewarded (or defaulted) since it was read
            self._raise_if_closed(event, self.store.get_reward(event_id), check_time=False)
            raise DuplicateRewardError(event_id) from None
        if event.deployment is not None:  # the call ended: the balancer hears it now
            self._report_call(event.deployment, ref=event_id, latency_s=latency_s, error=None)

    def get_event(self, event_id: str, *, fresh: bool = True) -> EventRecord:
        """The logged decision and its reward, if any.

        ``fresh=False`` may answer without a read: a decision this process logged lately
        and has not seen rewarded comes from memory as it was logged (its status
        ``pending``, no reward), even if another process has rewarded it since. For a caller
        about to :meth:`reward` it (which settles that itself) and needing only what the
        decision was."""
        _check_event_id(event_id)
        event = self.store.recent_event(event_id) if not fresh else None
        reward = None
        if event is None:
            event, reward = self.store.get_event_and_reward(event_id)
        if event is None:
            raise UnknownEventError(event_id)
        provider, model = event.model_key.split("/", 1)
        outcome = None
        if reward is not None:
            outcome = {"quality": reward.quality, "cost_usd": reward.cost_usd,
                       "latency_s": reward.latency_s, "output_tokens": reward.output_tokens,
                       "error": reward.error, "reward": reward.reward,
                       "is_default": reward.is_default, "received_at": reward.received_at}
        return EventRecord(
            event_id=event.id, created_at=event.created_at, status=event.status,
            provider=provider, model=model, probability=event.probability,
            cost_weight=event.cost_weight, latency_weight=event.latency_weight,
            input_tokens=event.input_tokens, policy_version=event.policy_version,
            constraints=dict(event.constraints), metadata=dict(event.meta or {}),
            eligible=[a["key"] for a in event.actions],
            estimates=dict(event.actions[event.chosen]["estimate"]), reward=outcome,
            arm=event.arm or "")

    def warm_start(self, history: Any, *, batch: int = 200) -> int:
        """Learn from history before live traffic. ``history`` is either

        - labelled history: a :class:`~bandit_router.eval.datasets.RoutingDataset`, past tasks
          with every model's outcome (e.g. evaluation runs); each outcome is logged as a
          decision taken with probability 1 (models the catalog lacks are skipped); or
        - logged bandit history: an iterable of :class:`~bandit_router.LoggedDecision`
          (see ``load_logged_decisions``), decisions another system took, each logged with
          the probability it was taken with, which VW uses as its importance weight.

        Each is logged with its reward (status ``history``, left out of routing statistics),
        then learned in log order like live traffic, so checkpoints, rebuilds and replicas
        include it. Rewards use the router's cost weight. Logged decisions are all validated
        before anything is written. Idempotent: a record already logged (by its
        ``event_id``, else by its content) is skipped. Returns how many rewards were
        learned."""
        from ..core._history import HistoryTarget, warm_start

        if self.following:
            raise InvalidInputError("this router follows the published model and learns "
                                    "nothing itself: warm-start the learner")
        return warm_start(HistoryTarget(
            store=self.store, learner=self._learner, catalog=self.catalog, config=self.config,
            embedder=self.embedder, lock=self._lock, clock=self._clock, arm=self.arm,
            after_batch=self._checkpoint_if_due), history, batch=batch)

    def _raise_if_closed(self, event: EventRow, existing: RewardRow | None, *,
                         check_time: bool = True) -> None:
        if existing is not None:
            if existing.is_default:
                raise RewardWindowClosedError(event.id, self.config.reward_wait_s)
            raise DuplicateRewardError(event.id)
        if check_time and self._clock() - event.created_at > self.config.reward_wait_s:
            self.process_expired(learn=self.config.maintenance_on_request)
            raise RewardWindowClosedError(event.id, self.config.reward_wait_s)

    def process_expired(self, *, learn: bool = True) -> int:
        """Give every event past its reward wait time its default reward, and learn it (with
        ``learn=False``, only store it: :meth:`sync` learns it later)."""
        n = self._learner.expire(self._clock() - self.config.reward_wait_s)  # a DB write only
        if learn and not self.following:
            with self._lock:
                self._learner.catch_up()
            self._checkpoint_if_due()
        return n

    def _maybe_expire(self) -> None:
        now = self._clock()
        with self._lock:
            due = now >= self._next_expiry_check
            if due:
                self._next_expiry_check = now + min(self.config.reward_wait_s / 10.0, 5.0)
        if due:
            self.process_expired()

    @property
    def policy_version(self) -> int:
        """How many rewards the policy has learned."""
        return self._learner.learned

    def sync(self, *, limit: int | None = None) -> int:
        """Pick up what was written to the database but not yet learned here: rewards from
        ``reward(learn=False)`` or from other processes (learned), and price changes
        (applied). ``limit`` caps how many rewards one call learns, so a caller that loops
        lets decisions in between. Returns how many rewards were learned.

        A follower (``follow=True``) learns nothing itself: it loads the newest published
        model instead (:meth:`refresh`) and returns how many more rewards that model learned."""
        if self.following:
            return self.refresh()
        with self._lock:
            self._apply_stored_prices()
            n = self._learner.catch_up(limit=limit)
        self._checkpoint_if_due()
        return n

    # -- one learner, many replicas ------------------------------------------------------------
    def refresh(self) -> int:
        """Serve the newest published model: load the newest checkpoint of this router's arm
        if it has learned more than this router, and apply stored price changes. The
        checkpoint is read and its memory built outside the router's lock; decisions wait
        only while the policy's model is swapped in. Returns how many more rewards the
        model in use has learned (0: nothing newer)."""
        prices = self.store.prices(after_id=self._price_id)  # read outside the lock
        with self._lock:
            self._apply_prices(prices)
        row = self._learner.published()
        if row is None:
            return 0
        memory = self._learner.prepare(row)
        if memory is None:
            return 0
        with self._lock:
            before = self._learner.learned
            swapped = self._learner.install(row, memory)
            return self._learner.learned - before if swapped else 0

    def take_over(self) -> int:
        """Stop following and learn: the newest published model first, then the log after it
        (a standby learner taking the lead). Returns how many rewards it learned from the log."""
        self.refresh()
        with self._lock:
            self.following = False
        total = 0
        while True:  # in batches: decisions go on between them
            n = self.sync(limit=_TAKE_OVER_BATCH)
            total += n
            if n < _TAKE_OVER_BATCH:
                return total

    def step_down(self) -> None:
        """Follow again (a learner that lost the lead): what it learned past its last
        publication is dropped at the next :meth:`refresh` that finds a newer model."""
        with self._lock:
            self.following = True

    def publish(self) -> int | None:
        """Write a checkpoint if this router has learned since its last one: the versioned
        model that followers load. Returns the version written (rewards learned), or None."""
        with self._lock:
            if self.following or self._learner.learned == self._learner.checkpointed_at:
                return None
            before = self._learner.checkpointed_at
            snap = self._learner.snapshot()
        try:
            write_checkpoint(self.store, snap, self._clock())
        except BaseException:
            with self._lock:  # not published: the next call tries again
                self._learner.checkpoint_failed(before)
            raise
        return snap.learned

    def _checkpoint_if_due(self) -> None:
        """Checkpoint every ``checkpoint_every`` rewards: the state is copied under the lock,
        hashed and written outside it, so decisions go on meanwhile."""
        with self._lock:
            snap = (self._learner.snapshot()
                    if self._learner.checkpoint_due and not self.following else None)
        if snap is not None:
            try:
                write_checkpoint(self.store, snap, self._clock())
            except SQLAlchemyError as exc:  # the reward is already durable: the log has it
                log.warning("checkpoint at %d rewards not written (the next one will be): %s",
                            snap.learned, exc)

    # -- catalog -----------------------------------------------------------------------------
    def _apply_stored_prices(self) -> None:
        self._apply_prices(self.store.prices(after_id=self._price_id))

    def _apply_prices(self, rows: Sequence[PriceRow]) -> None:
        """Apply price rows read from the store (under the lock; rows already applied by a
        concurrent call are skipped)."""
        for row in rows:
            if row.id <= self._price_id:
                continue
            self._price_id = row.id
            if f"{row.provider}/{row.model}" in self.catalog:
                self.catalog.update_price(row.provider, row.model,
                                          input_price_per_1m=row.input_price_per_1m,
                                          output_price_per_1m=row.output_price_per_1m)

    def update_pricing(self, provider: str, prices: Mapping[str, Mapping[str, float]]) -> None:
        """Change prices at run time: ``{model: {"input_price_per_1m": .., "output_price_per_1m":
        ..}}``. Stored, and in effect from the next decision."""
        if not isinstance(prices, Mapping) or not prices:
            raise CatalogError("prices must map model names to their new prices")
        allowed = {"input_price_per_1m", "output_price_per_1m"}
        with self._lock:
            rows = []
            for model, change in prices.items():  # validate everything before changing anything
                if not isinstance(change, Mapping) or not change or set(change) - allowed:
                    raise CatalogError(f"price update for {model!r} must set {sorted(allowed)}")
                spec = self.catalog.find(provider, model)
                replace(spec,  # raises CatalogError if a price is invalid
                        input_price_per_1m=change.get("input_price_per_1m",
                                                      spec.input_price_per_1m),
                        output_price_per_1m=change.get("output_price_per_1m",
                                                       spec.output_price_per_1m))
                rows.append(PriceRow(updated_at=self._clock(), provider=provider, model=model,
                                     input_price_per_1m=change.get("input_price_per_1m"),
                                     output_price_per_1m=change.get("output_price_per_1m")))
            self.store.add_prices(rows)  # one transaction: all or nothing
            self._apply_stored_prices()

    # -- the original design's names ---------------------------------------------------------
    def route(self, task: str, constraints: Constraints | None = None,
              **fields: Any) -> tuple[str, str]:
        """``select()`` returning only ``(provider, model)``, with constraints given as an
        object, as keywords (``route(task, min_quality=0.95)``, the names of
        :class:`RoutingConstraints`), or both (the keywords win). Reward it through
        :meth:`select`'s event id if you can; unrewarded, it gets the default reward after
        ``reward_wait_s``."""
        if fields:
            base = (constraints or Constraints()).to_dict()
            if "max_cost" in fields:
                base.pop("max_cost_usd", None)
            if "max_latency" in fields:
                base.pop("max_latency_s", None)
            constraints = RoutingConstraints(**{**base, **fields})
        d = self.select(task, constraints=constraints)
        return d.provider, d.model

    def get_routing_stats(self, *, since: float | None = None) -> dict[str, Any]:
        """Traffic, quality and spend per model, and savings against the reference model,
        over every decision or, with ``since`` (Unix seconds), over those made since then
        (read through the index on the decisions' time: a dashboard that refreshes every
        few seconds should ask for a window, not the whole log); the learner's state:
        ``policy_version``, ``task_clusters`` (the codebooks' sizes and tag, ``None`` before
        they are fitted) and ``remembered_tasks`` (outcomes in the memory)."""
        from ..core._stats import routing_stats

        since = check_time("since", since)

        with self._lock:
            # a copy: the memory updates its statistics in place as it learns
            measured = {k: dict(v) for k, v in self._learner.memory.model_stats().items()}
            learned = self._learner.learned
            clusters = self._learner.clusters
            remembered = len(self._learner.memory)
        out = routing_stats(self.store, self.catalog, measured, policy_version=learned,
                            since=since)
        out["task_clusters"] = (None if clusters is None
                                else {"sizes": list(clusters.sizes), "tag": clusters.tag})
        out["remembered_tasks"] = remembered
        return out

    # -- life cycle --------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Write a checkpoint of the policy and the memory now."""
        with self._lock:
            self._learner.checkpoint()

    def close(self) -> None:
        """Checkpoint if anything was learned since the last one, and release the database."""
        self._stop_watchers()
        with self._lock:
            if not self.following:
                self._learner.checkpoint_if_dirty()
        self.store.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

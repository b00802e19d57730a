"""Warm start: learning from history before live traffic (see :meth:`Router.warm_start`).

Two kinds of history are accepted:

- **labelled history**, a :class:`~bandit_router.eval.datasets.RoutingDataset`: past tasks with
  every model's outcome (e.g. evaluation runs). Each outcome is logged as a decision taken
  with probability 1.
- **logged bandit history**, an iterable of :class:`LoggedDecision`: decisions another
  system took, each with the task (or its embedding), the eligible models, the model chosen,
  the probability it was chosen with, and the outcome observed. Each is logged with *its*
  probability, which Vowpal Wabbit's ``cb_adf`` uses as the importance weight when it
  learns (the reward of an action chosen with probability ``p`` counts ``1/p``), so a
  logging policy's preferences are corrected for rather than learned as truth.

Both are written to the event log (status ``history``, left out of routing and experiment
statistics) together with their rewards, in batches, then learned in log order like live
traffic, so checkpoints, rebuilds and replicas include them.

**Idempotent.** Every history event gets an id derived from the router's arm and the
record: a logged decision's ``event_id`` (the source system's id) or, without one, its
content; a labelled outcome's dataset name, task id, text, model and outcome. A record that
is already in the log is skipped, so a warm start can be re-run or resumed after an
interruption without learning anything twice. Give logged decisions their source
``event_id``: two decisions without one and with identical content cannot be told apart,
and are refused (:class:`~bandit_router.InvalidInputError`) rather than merged.

**Validated first.** Every logged decision is checked (probability in (0, 1], the chosen
model among the eligible ones, every name in the catalog, quality in [0, 1], cost and
latency in range, the task acceptable to the router) before anything is written; one bad
record raises its typed error and nothing is logged. The records and their file format are
in :mod:`bandit_router.core._logged`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ._catalog import Catalog
from ._dataset import RoutingDataset
from ._embedding import task_hash
from ._errors import (
    InvalidInputError,
    InvalidRewardError,
    InvalidTaskError,
    UnknownModelError,
)
from ._events import action_records, event_row
from ._features import estimate_tokens, task_features
from ._logged import LoggedDecision, _located
from ._objective import Objective
from ._scoring import action_features
from ._store import EventRow, LearnItem, RewardRow, Store
from ._validation import MAX_ABS_REWARD, check_task

if TYPE_CHECKING:
    from ._config import RouterConfig
    from ._embedding import Embedder
    from ._learner import Learner

__all__ = ["HistoryTarget", "warm_start"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryTarget:
    """What a warm start writes to and learns with: the router's log, learner and settings
    (``Router.warm_start`` hands its own over; nothing here knows the router). ``lock``
    guards the learner; ``after_batch`` runs after each batch is learned (a checkpoint when
    one is due)."""

    store: Store
    learner: Learner
    catalog: Catalog
    config: RouterConfig
    embedder: Embedder
    lock: AbstractContextManager[Any]
    clock: Callable[[], float]
    arm: str
    after_batch: Callable[[], None]

log = logging.getLogger("bandit_router")

def _key_of(catalog: Catalog, name: str, what: str) -> str:
    """The one catalog key ``name`` stands for (``provider/model`` or a model name)."""
    if name in catalog:
        return name
    found = [spec.key for spec in catalog if spec.model == name]
    if not found:
        raise UnknownModelError(f"{what} {name!r} is not in the catalog")
    if len(found) > 1:
        raise InvalidInputError(f"{what} {name!r} is served by {sorted(found)}: name one as "
                                "provider/model")
    return found[0]



def _digest(*parts: Any) -> str:
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


# -- the log ----------------------------------------------------------------------------------
def _existing(store: Store, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are already in the event log."""
    found: set[str] = set()
    with store.session() as s:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            found.update(s.scalars(select(EventRow.id).where(EventRow.id.in_(chunk))))
    return found


def _write(target: HistoryTarget, pairs: list[tuple[EventRow, RewardRow]]) -> int:
    """Log a batch of history (skipping events already there), learn it; returns how many
    rewards were learned."""
    written: list[tuple[EventRow, RewardRow]] = []
    seqs: list[int] = []
    if pairs:
        try:
            seqs = target.store.add_history(pairs)
            written = pairs
        except IntegrityError:  # another process wrote some of them meanwhile: skip those
            seen = _existing(target.store, [e.id for e, _ in pairs])
            written = [(e, r) for e, r in pairs if e.id not in seen]
            seqs = target.store.add_history(written)
    for (_, reward), seq in zip(written, seqs, strict=True):
        reward.seq = seq
    with target.lock:
        # the rows in hand, when they follow what was learned (else the log is read)
        learned = target.learner.learn_written([LearnItem(r, e) for e, r in written])
    target.after_batch()
    return learned


# -- labelled history -------------------------------------------------------------------------
def _warm_start_labelled(target: HistoryTarget, history: RoutingDataset, *, batch: int) -> int:
    by_name = {s.model: s for s in target.catalog} | {s.key: s for s in target.catalog}
    columns = [(j, spec) for j, m in enumerate(history.models)
               if (spec := by_name.get(m) or by_name.get(m.rpartition("/")[2]))]
    if not columns:
        raise InvalidTaskError("no model of the history is in the catalog")
    lam, mu = target.config.cost_weight, target.config.latency_weight
    objective = Objective(lam, mu)
    head: dict[int, np.ndarray] = {}  # vectors embedded ahead, for the clusters
    if history.embeddings is not None:  # the task clusters, from the whole history at once
        with target.lock:
            target.learner.fit_clusters(history.embeddings)
    elif target.config.task_clusters and target.learner.clusters is None:
        # ... or from its first cluster_after tasks, embedded ahead: history learned before
        # the clusters exist would leave the policy without a view of them, per cluster
        first = range(min(len(history), target.config.cluster_after))
        head = dict(zip(first, target.embedder.embed([history.texts[i] for i in first]),
                        strict=True))
        with target.lock:
            target.learner.fit_clusters(np.stack(list(head.values())))
    learned = 0
    skip: set[str] = set()  # logged before, or earlier in this dataset (a repeated row)
    for start in range(0, len(history), batch):
        rows = range(start, min(start + batch, len(history)))
        ids = {(i, j): "history-" + _digest(
            target.arm, "labelled", history.name, history.task_ids[i],
            task_hash(history.texts[i]), spec.key, float(history.quality[i, j]),
            float(history.cost[i, j]), float(history.latency[i, j]))
            for i in rows for j, spec in columns}
        skip |= _existing(target.store, list(ids.values()))
        todo = [i for i in rows if any(ids[(i, j)] not in skip for j, _ in columns)]
        if not todo:
            continue
        texts = [history.texts[i] for i in todo]
        if history.embeddings is not None:
            vectors = history.embeddings[todo]
        else:
            rest = [i for i in todo if i not in head]
            fresh = (dict(zip(rest, target.embedder.embed([history.texts[i] for i in rest]),
                              strict=True)) if rest else {})
            vectors = np.stack([head.pop(i) if i in head else fresh[i] for i in todo])
        pairs = []
        with target.lock:
            for i, text, emb in zip(todo, texts, vectors, strict=True):
                n_in = (int(history.input_tokens[i]) if history.input_tokens is not None
                        else estimate_tokens(text))
                specs = [spec for _, spec in columns]
                ests = target.learner.estimates(specs, emb, n_in)
                acts = [action_features(s, e, cost_weight=lam, latency_weight=mu)
                        for s, e in zip(specs, ests, strict=True)]
                records = action_records(specs, ests, acts)
                context = target.learner.task_context(emb, task_features(text))
                for k, (j, spec) in enumerate(columns):
                    event_id = ids[(i, j)]
                    if event_id in skip:
                        continue
                    skip.add(event_id)
                    q = float(history.quality[i, j])
                    c = float(history.cost[i, j])
                    lat = float(history.latency[i, j])
                    tok = history.output_tokens
                    pairs.append((event_row(
                        id=event_id, created_at=target.clock(), status="history",
                        task_hash=task_hash(text), embedder=target.embedder.name,
                        embedding=emb, context=context, actions=records, chosen=k,
                        probability=1.0,
                        pmf=[1.0 if x == k else 0.0 for x in range(len(columns))],
                        cost_weight=lam, latency_weight=mu, input_tokens=n_in,
                        reference_key=spec.key, reference_cost_usd=0.0, constraints={},
                        policy_version=target.learner.learned,
                        meta={"history": history.name}, arm=target.arm),
                        RewardRow(event_id=event_id, received_at=target.clock(), quality=q,
                                  cost_usd=c, latency_s=lat,
                                  output_tokens=int(tok[i, j]) if tok is not None
                                  else None, error=None,
                                  reward=objective.reward(q, c, lat), is_default=False)))
        learned += _write(target, pairs)
    return learned


# -- logged bandit history --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Checked:
    record: LoggedDecision
    event_id: str
    keys: tuple[str, ...]
    chosen: int
    input_tokens: int


def _check(target: HistoryTarget, records: Sequence[Any]) -> list[_Checked]:
    """Every record validated against the router (catalog, task limits, embedding size,
    reward bounds) and given its event id; raises on the first bad one."""
    catalog = target.catalog
    all_keys = tuple(catalog.model_keys())
    lam = target.config.cost_weight
    objective = Objective(lam, target.config.latency_weight)
    out: list[_Checked] = []
    first: dict[str, int] = {}
    for i, rec in enumerate(records):
        where = f"logged decision {i}"
        if not isinstance(rec, LoggedDecision):
            raise InvalidInputError(f"{where} is a {type(rec).__name__}, not a LoggedDecision")
        try:
            chosen = _key_of(catalog, rec.chosen, "chosen model")
            keys = (tuple(_key_of(catalog, n, "eligible model") for n in rec.eligible)
                    if rec.eligible is not None else all_keys)
            if len(set(keys)) != len(keys):
                raise InvalidInputError(f"eligible names a model twice: {list(keys)}")
            if chosen not in keys:
                raise InvalidInputError(f"chosen model {chosen!r} is not among the eligible "
                                        f"models {list(keys)}")
            if len(keys) == 1 and rec.probability != 1.0:
                raise InvalidInputError("with one eligible model, probability must be 1")
            if rec.task is not None:
                check_task(rec.task, max_chars=target.config.max_task_chars)
            if rec.embedding is not None and rec.embedding.shape[0] != target.embedder.dim:
                raise InvalidInputError(
                    f"embedding has {rec.embedding.shape[0]} dimensions; the router's "
                    f"embedder ({target.embedder.name}) gives {target.embedder.dim}")
            spec = catalog.get(chosen)
            lat = rec.latency_s if rec.latency_s is not None else spec.avg_latency
            value = objective.reward(rec.quality, rec.cost_usd, lat)
            if not abs(value) <= MAX_ABS_REWARD:
                raise InvalidRewardError(
                    f"the reward {Objective.FORMULA} = "
                    f"{value:g} is outside [-{MAX_ABS_REWARD:g}, {MAX_ABS_REWARD:g}]")
        except (InvalidInputError, UnknownModelError) as exc:
            raise _located(exc, where) from None
        if rec.event_id is not None:
            identity: tuple[Any, ...] = ("id", rec.event_id)
        else:
            vector = (hashlib.sha256(rec.embedding.tobytes()).hexdigest()
                      if rec.embedding is not None else None)
            identity = ("content", rec.task, vector, chosen, sorted(keys), rec.probability,
                        rec.quality, rec.cost_usd, rec.latency_s, rec.output_tokens,
                        rec.input_tokens, rec.timestamp)
        event_id = "logged-" + _digest(target.arm, *identity)
        if event_id in first:
            raise InvalidInputError(
                f"logged decisions {first[event_id]} and {i} are the same decision "
                + ("(same event_id)" if rec.event_id is not None else
                   "(identical, without an event_id): give each its source event_id"))
        first[event_id] = i
        n_in = rec.input_tokens if rec.input_tokens is not None else estimate_tokens(
            rec.task or "")
        out.append(_Checked(record=rec, event_id=event_id, keys=keys,
                            chosen=keys.index(chosen), input_tokens=n_in))
    return out


def _warm_start_logged(target: HistoryTarget, records: Iterable[Any], *, batch: int) -> int:
    checked = _check(target, list(records))  # everything, before anything is written
    seen = _existing(target.store, [c.event_id for c in checked])
    todo = [c for c in checked if c.event_id not in seen]
    if seen:
        log.info("warm start: %d of %d logged decisions are already in the log; skipped",
                 len(checked) - len(todo), len(checked))
    lam, mu = target.config.cost_weight, target.config.latency_weight
    objective = Objective(lam, mu)
    learned = 0
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        texts = [c.record.task for c in chunk if c.record.embedding is None]
        embedded: Iterator[npt.NDArray[np.float32]] = iter(
            target.embedder.embed([t for t in texts if t is not None]) if texts else [])
        vectors = [c.record.embedding if c.record.embedding is not None else next(embedded)
                   for c in chunk]
        pairs = []
        with target.lock:
            for c, emb in zip(chunk, vectors, strict=True):
                rec = c.record
                specs = [target.catalog.get(k) for k in c.keys]
                ests = target.learner.estimates(specs, emb, c.input_tokens)
                acts = [action_features(s, e, cost_weight=lam, latency_weight=mu)
                        for s, e in zip(specs, ests, strict=True)]
                n, p = len(specs), rec.probability
                # only the chosen model's probability was logged: the rest is spread evenly
                pmf = [p if x == c.chosen else (1.0 - p) / (n - 1) for x in range(n)]
                lat = (rec.latency_s if rec.latency_s is not None
                       else ests[c.chosen].latency_s)  # as a live reward without latency
                now = target.clock()
                meta: dict[str, Any] = {"history": "logged"}
                if rec.event_id is not None:
                    meta["source_event_id"] = rec.event_id
                thash = (task_hash(rec.task) if rec.task is not None
                         else hashlib.sha256(np.asarray(emb, np.float32).tobytes()).hexdigest())
                pairs.append((event_row(
                    id=c.event_id, created_at=rec.timestamp if rec.timestamp is not None
                    else now, status="history", task_hash=thash,
                    embedder=target.embedder.name, embedding=emb,
                    context=target.learner.task_context(
                        emb, task_features(rec.task) if rec.task is not None else {}),
                    actions=action_records(specs, ests, acts), chosen=c.chosen,
                    probability=p, pmf=pmf, cost_weight=lam, latency_weight=mu,
                    input_tokens=c.input_tokens, reference_key=c.keys[c.chosen],
                    reference_cost_usd=0.0, constraints={},
                    policy_version=target.learner.learned, meta=meta, arm=target.arm),
                    RewardRow(event_id=c.event_id, received_at=now, quality=rec.quality,
                              cost_usd=rec.cost_usd, latency_s=rec.latency_s,
                              output_tokens=rec.output_tokens, error=None,
                              reward=objective.reward(rec.quality, rec.cost_usd, lat),
                              is_default=False)))
        learned += _write(target, pairs)
    return learned


def warm_start(target: HistoryTarget, history: Any, *, batch: int = 200) -> int:
    """Log ``history`` (a :class:`~bandit_router.eval.datasets.RoutingDataset`, or an iterable of
    :class:`LoggedDecision`) with its rewards, in batches, and learn each batch in log
    order; returns how many rewards were learned (0 when everything was logged before)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInputError("batch must be a positive integer")
    if isinstance(history, RoutingDataset):
        return _warm_start_labelled(target, history, batch=batch)
    if isinstance(history, str | bytes | Path) or not isinstance(history, Iterable):
        raise InvalidInputError(
            "warm_start takes a RoutingDataset or an iterable of LoggedDecision (read a file "
            "with load_logged_decisions)")
    return _warm_start_logged(target, history, batch=batch)


# -- the file format --------------------------------------------------------------------------

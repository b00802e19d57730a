"""Warm start: learning from labelled history before live traffic (see Router.warm_start)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from ._embedding import task_hash
from ._errors import InvalidTaskError
from ._features import estimate_tokens, task_features
from ._scoring import action_features
from ._store import EventRow, RewardRow

if TYPE_CHECKING:
    from ._router import Router

__all__ = ["warm_start"]


def warm_start(router: Router, history: Any, *, batch: int = 200) -> int:
    """Log every outcome of ``history`` as a probability-1 decision with its reward, in
    batches, and learn each batch in log order; returns how many outcomes were learned."""
    from .datasets import RoutingDataset

    if not isinstance(history, RoutingDataset):
        raise InvalidTaskError("warm_start takes a RoutingDataset")
    by_name = {s.model: s for s in router.catalog} | {s.key: s for s in router.catalog}
    columns = [(j, spec) for j, m in enumerate(history.models)
               if (spec := by_name.get(m) or by_name.get(m.rpartition("/")[2]))]
    if not columns:
        raise InvalidTaskError("no model of the history is in the catalog")
    lam, mu = router.config.cost_weight, router.config.latency_weight
    learned = 0
    for start in range(0, len(history), batch):
        rows = range(start, min(start + batch, len(history)))
        texts = [history.texts[i] for i in rows]
        vectors = (history.embeddings[list(rows)] if history.embeddings is not None
                   else router.embedder.embed(texts))
        pairs = []
        with router._lock:
            for i, text, emb in zip(rows, texts, vectors, strict=True):
                n_in = (int(history.input_tokens[i]) if history.input_tokens is not None
                        else estimate_tokens(text))
                specs = [spec for _, spec in columns]
                ests = router._learner.estimates(specs, emb, n_in)
                acts = [action_features(s, e, cost_weight=lam, latency_weight=mu)
                        for s, e in zip(specs, ests, strict=True)]
                records = [{"key": s.key, "features": a,
                            "input_price_per_1m": s.input_price_per_1m,
                            "output_price_per_1m": s.output_price_per_1m,
                            "estimate": {"quality": e.quality, "cost_usd": e.cost_usd,
                                         "latency_s": e.latency_s,
                                         "output_tokens": e.output_tokens}}
                           for s, e, a in zip(specs, ests, acts, strict=True)]
                for k, (j, spec) in enumerate(columns):
                    q = float(history.quality[i, j])
                    c = float(history.cost[i, j])
                    lat = float(history.latency[i, j])
                    tok = history.output_tokens
                    event_id = f"history-{uuid.uuid4().hex}"
                    pairs.append((EventRow(
                        id=event_id, created_at=router._clock(), status="history",
                        task_hash=task_hash(text), task_text=None,
                        embedder=router.embedder.name,
                        embedding=np.asarray(emb, np.float32).tobytes(),
                        context={"T": task_features(text)}, actions=records, chosen=k,
                        model_key=spec.key, probability=1.0,
                        pmf=[1.0 if x == k else 0.0 for x in range(len(columns))],
                        cost_weight=lam, latency_weight=mu, input_tokens=n_in,
                        reference_key=spec.key, reference_cost_usd=0.0, constraints={},
                        policy_version=router._learner.learned,
                        meta={"history": history.name}, arm=router.arm),
                        RewardRow(event_id=event_id, received_at=router._clock(), quality=q,
                                  cost_usd=c, latency_s=lat,
                                  output_tokens=int(tok[i, j]) if tok is not None
                                  else None, error=None,
                                  reward=q - lam * c - mu * lat, is_default=False)))
        router.store.add_history(pairs)
        with router._lock:
            learned += router._learner.catch_up()
        router._checkpoint_if_due()
    return learned

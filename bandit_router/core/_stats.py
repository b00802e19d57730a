"""Routing statistics: traffic, quality and spend per model, savings against a reference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._catalog import Catalog
from ._store import Store

__all__ = ["routing_stats"]

#: A model needs this many measured rewards before its measured quality replaces its prior.
MIN_MEASURED = 30


def routing_stats(store: Store, catalog: Catalog, measured: Mapping[str, Mapping[str, float]],
                  *, policy_version: int, since: float | None = None) -> dict[str, Any]:
    """What :meth:`Router.get_routing_stats` returns: over every decision, or over those
    made since ``since`` (Unix seconds).

    ``cost_saved_usd`` compares what the rewarded decisions cost with what the reference model
    (the catalog's strongest, by quality prior) was estimated to cost on the same tasks.
    ``quality_kept`` divides the measured mean quality by the reference model's quality:
    measured when it has at least ``MIN_MEASURED`` rewards, else its prior.
    """
    per_model = store.stats_by_model(since=since)
    counts = store.count_events(since=since)
    decisions = sum(counts.values())
    rewarded = sum(m["rewarded"] for m in per_model)
    spend = sum(m["spend_usd"] for m in per_model)
    reference_spend = sum(m["reference_cost_usd"] for m in per_model)
    reference = max(catalog, key=lambda s: (s.quality_score, s.output_price_per_1m))
    ref_measured = measured.get(reference.key)
    if ref_measured is not None and ref_measured["n"] >= MIN_MEASURED:
        ref_quality, ref_source = float(ref_measured["quality"]), "measured"
    else:
        ref_quality, ref_source = reference.quality_score, "prior"
    quality = (sum(m["mean_quality"] * m["rewarded"] for m in per_model if m["rewarded"])
               / rewarded) if rewarded else None
    for m in per_model:
        m["traffic_share"] = m["decisions"] / decisions if decisions else 0.0
    return {
        "policy_version": policy_version,
        "since": since,
        "decisions": decisions,
        "rewarded": rewarded,
        "pending": counts.get("pending", 0),
        "defaulted": counts.get("defaulted", 0),
        "spend_usd": spend,
        "mean_quality": quality,
        "reference_model": reference.key,
        "reference_spend_usd": reference_spend,
        "cost_saved_usd": reference_spend - spend,
        "cost_saved_pct": (100.0 * (1 - spend / reference_spend)) if reference_spend else None,
        "reference_quality": ref_quality,
        "reference_quality_source": ref_source,
        "quality_kept": (quality / ref_quality) if quality is not None and ref_quality else None,
        "models": per_model,
    }

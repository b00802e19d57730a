"""The feature schema: the Vowpal Wabbit namespace (one letter) of each kind of feature the
router gives its policy. Every module names them from here; the letters are stored in the
event log (contexts and actions) and in VW's hashes, so they never change.

Context (the task): ``E`` its embedding, ``T`` its text features, ``K`` its task clusters.
Action (an eligible model): ``M`` the model's identity, ``P`` its provider, ``A`` the
cost-aware numbers (cost and latency terms, the neighbours' quality estimate and its
evidence), ``Q`` that estimate again, for crossing with ``M`` only (see ``_scoring``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLUSTERS", "CROSSED_ESTIMATE", "EMBEDDING", "ESTIMATE", "MODEL", "PROVIDER", "TASK"]

EMBEDDING: Final = "E"
TASK: Final = "T"
CLUSTERS: Final = "K"
MODEL: Final = "M"
PROVIDER: Final = "P"
ESTIMATE: Final = "A"
CROSSED_ESTIMATE: Final = "Q"

"""The README's example, as written: embedded defaults, nothing passed in."""

from __future__ import annotations

import pytest

from bandit_router import Constraints, Router


@pytest.mark.slow
def test_router_on_embedded_defaults(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    router = Router()  # SQLite file in the working directory, bundled catalog, MiniLM
    d = router.select("Translate 'Hello' to French",
                      constraints=Constraints(max_cost_usd=0.0001, max_latency_s=5))
    assert (tmp_path / "bandit_router.db").exists()
    assert d.estimated_cost_usd <= 0.0001 and d.estimated_latency_s <= 5
    assert len(d.alternatives) >= 1 and d.reasoning
    receipt = router.reward(d.event_id, quality=0.92, cost_usd=0.00004, latency_s=0.8)
    assert receipt.policy_version == 1
    assert router.route("Summarize this paragraph about remote work.")[0] in \
        router.catalog.providers()
    stats = router.get_routing_stats()
    assert stats["decisions"] == 2 and stats["rewarded"] == 1
    router.close()

"""In-process checks of the app: settings sources, the reward window's 410."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from bandit_router import PolicyConfig, RouterConfig
from feedback_api import KeyStore, Settings, create_app
from feedback_api.settings import POLICY_SETTINGS, ROUTER_SETTINGS


def test_settings_from_env_over_toml(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "router.toml"
    config.write_text('cost_weight = 5.0\nport = 9000\nembedder = "hash"\n')
    monkeypatch.setenv("BANDIT_ROUTER_CONFIG_FILE", str(config))
    monkeypatch.setenv("BANDIT_ROUTER_PORT", "9100")
    s = Settings()
    assert s.cost_weight == 5.0 and s.embedder == "hash" and s.port == 9100
    monkeypatch.setenv("BANDIT_ROUTER_COST_WEIGHT", "-1")
    with pytest.raises(ValueError):
        Settings()


def test_reward_after_the_wait_is_gone(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'app.db'}"
    settings = Settings(database_url=db, embedder="hash", reward_wait_s=0.5,
                        learn_interval_s=0.1)
    keys = KeyStore(db)
    secret = keys.create(name="t", scope="client")[1]
    keys.close()
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(settings)) as http:
        event = http.post("/v1/select", json={"task": "hello"}, headers=headers).json()
        time.sleep(0.8)
        r = http.post(f"/v1/events/{event['event_id']}/reward", json={"quality": 1.0},
                      headers=headers)
        assert r.status_code == 410
        body = r.json()["error"]
        assert body["type"] == "RewardWindowClosedError"
        assert body["details"] == {"event_id": event["event_id"], "wait_s": 0.5}
        got = http.get(f"/v1/events/{event['event_id']}", headers=headers).json()
        assert got["status"] == "defaulted" and got["reward"]["is_default"] is True


def test_auth_can_be_switched_off_for_a_trusted_host(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", embedder="hash",
                        auth=False)
    with TestClient(create_app(settings)) as http:
        assert http.post("/v1/select", json={"task": "hello"}).status_code == 200
        assert http.get("/v1/stats").status_code == 200


def test_what_start_up_loaded_is_out_of_the_collectors_full_passes(tmp_path) -> None:
    """While the service runs, what its start-up loaded is frozen (``gc.freeze``): the
    collector's full passes do not walk it; after shutdown it is collectable again."""
    import gc

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", embedder="hash",
                        auth=False)
    gc.unfreeze()  # (whatever another app in this process froze)
    with TestClient(create_app(settings)) as http:
        assert gc.get_freeze_count() > 1000  # the router, its catalog, the modules, ...
        assert http.post("/v1/select", json={"task": "hello"}).status_code == 200
    assert gc.get_freeze_count() == 0


def test_policy_and_cluster_settings_reach_the_router(tmp_path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from feedback_api.app import build_router

    monkeypatch.setenv("BANDIT_ROUTER_TASK_CLUSTERS", "[3, 12]")
    monkeypatch.setenv("BANDIT_ROUTER_EMBEDDING_DIMS", "32")
    monkeypatch.setenv("BANDIT_ROUTER_EXACT_RECALL_LIMIT", "2048")
    monkeypatch.setenv("BANDIT_ROUTER_MEMORY_SIZE", "1000000")
    s = Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", embedder="hash",
                 gamma_scale=50.0, cluster_after=40, exploration="squarecb")
    assert s.task_clusters == (3, 12)
    router = build_router(s)
    try:
        assert router.config.task_clusters == (3, 12) and router.config.cluster_after == 40
        assert router.config.exact_recall_limit == 2048
        assert router._learner.memory.exact_limit == 2048
        memory = router._learner.memory  # a million tasks: 8-bit codes in 2,048 lists
        assert router.config.memory_size == 1_000_000 and memory.compact
        assert memory.lists == 2048 and memory.switch_at == 16 * 2048
        policy = router.policy.config  # type: ignore[attr-defined]
        assert policy.gamma_scale == 50.0 and policy.embedding_dims == 32
        assert policy.exploration == "squarecb" and "--cb_adf" in policy.vw_args()
    finally:
        router.close()
    monkeypatch.setenv("BANDIT_ROUTER_OPTIMISM", "0.2")
    monkeypatch.setenv("BANDIT_ROUTER_BASELINE_STRENGTH", "10")
    hopeful = build_router(Settings(database_url=f"sqlite:///{tmp_path / 'o.db'}",
                                    embedder="hash", gamma_scale=200.0))
    assert hopeful.policy.config.optimism == 0.2  # type: ignore[attr-defined]
    assert hopeful.policy.config.baseline_strength == 10.0  # type: ignore[attr-defined]
    assert "--cb_adf" in hopeful.policy.config.vw_args()  # type: ignore[attr-defined]
    hopeful.close()
    # the library's own checks refuse bad combinations when the settings are read
    with pytest.raises(ValidationError, match="elimination was removed"):
        Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", embedder="hash",
                 elimination=True)
    monkeypatch.delenv("BANDIT_ROUTER_OPTIMISM")
    # a baseline alone implies squareCB too, without the bonus
    baseline_only = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}",
                             embedder="hash").policy_config()
    assert (baseline_only.exploration, baseline_only.optimism) == ("squarecb", 0.0)
    with pytest.raises(ValidationError, match="baseline_strength"):  # not with epsilon
        Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}", embedder="hash",
                 exploration="epsilon")
    monkeypatch.delenv("BANDIT_ROUTER_BASELINE_STRENGTH")
    monkeypatch.setenv("BANDIT_ROUTER_TASK_CLUSTERS", "[]")
    monkeypatch.setenv("BANDIT_ROUTER_EXACT_RECALL_LIMIT", "null")
    off = build_router(Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", embedder="hash"))
    assert off.config.task_clusters == () and off._learner.memory.exact_limit is None
    off.close()
    with pytest.raises(ValidationError, match="cluster_after"):
        Settings(database_url=f"sqlite:///{tmp_path / 'u.db'}", embedder="hash",
                 task_clusters=(4, 16), cluster_after=8)


def test_the_services_defaults_are_the_librarys() -> None:
    s = Settings(embedder="hash")
    assert s.router_config() == RouterConfig(maintenance_on_request=False)
    assert s.policy_config() == PolicyConfig()
    # every exposed name is a field of the library's configuration, of the same name
    assert set(ROUTER_SETTINGS) <= {f.name for f in dataclasses.fields(RouterConfig)}
    assert set(POLICY_SETTINGS) <= {f.name for f in dataclasses.fields(PolicyConfig)}
    assert Settings(cost_weight=5.0).router_config().cost_weight == 5.0
    with pytest.raises(ValidationError, match="cost_weight must be in"):
        Settings(cost_weight=2e6)
    with pytest.raises(ValidationError, match="thompson_scale"):
        Settings(thompson_scale=0.0)
    with pytest.raises(ValidationError, match="seed must be an integer"):  # not at first use
        Settings(seed=-1)
    with pytest.raises(ValidationError, match="not a SQLite or PostgreSQL URL"):
        Settings(database_url="mysql://db/router")


def test_the_embedder_setting_names_the_librarys_embedders(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from typing import get_args

    from bandit_router import DEFAULT_EMBEDDER, EMBEDDERS

    assert get_args(Settings.model_fields["embedder"].annotation) == EMBEDDERS
    monkeypatch.delenv("BANDIT_ROUTER_EMBEDDER", raising=False)
    assert Settings().embedder == DEFAULT_EMBEDDER == "minilm"  # the library's default
    monkeypatch.setenv("BANDIT_ROUTER_EMBEDDER", "minilm-int8")
    assert Settings().embedder == "minilm-int8"
    monkeypatch.setenv("BANDIT_ROUTER_EMBEDDER", "bert")
    with pytest.raises(ValidationError, match="minilm-torch"):
        Settings()

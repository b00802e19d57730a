"""A/B experiments over HTTP (admin endpoints), in process: real VW, real SQLite."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from bandit_router.simulation import SyntheticWorkload
from feedback_api import KeyStore, Settings, create_app


def test_experiment_lifecycle_over_http(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'exp.db'}"
    keys = KeyStore(db)
    admin = {"Authorization": f"Bearer {keys.create(name='ops', scope='admin')[1]}"}
    client = {"Authorization": f"Bearer {keys.create(name='app', scope='client')[1]}"}
    keys.close()
    import json

    from bandit_router.simulation import demo_catalog

    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    settings = Settings(database_url=db, embedder="hash", cost_weight=50.0,
                        learn_interval_s=0.05, catalog_path=str(catalog))
    spec = {"name": "explore-less",
            "arms": {"uniform": {"exploration": "epsilon", "epsilon": 1.0}, "bandit": {}}}
    with TestClient(create_app(settings)) as http:
        assert http.post("/v1/experiments", json=spec, headers=client).status_code == 403
        r = http.post("/v1/experiments", json=spec, headers=admin)
        assert r.status_code == 201 and r.json()["status"] == "running"
        assert http.post("/v1/experiments", json=spec, headers=admin).status_code == 422
        bad = {**spec, "name": "x", "shares": {"uniform": 1.0}}
        assert http.post("/v1/experiments", json=bad, headers=admin).status_code == 422
        assert http.post("/v1/select", json={"task": "hi", "experiment": "explore-less"},
                         headers=client).status_code == 422  # no unit_key
        r = http.post("/v1/select", json={"task": "hi", "experiment": "nope", "unit_key": "u"},
                      headers=client)
        assert r.status_code == 404 and r.json()["error"]["type"] == "UnknownExperimentError"
        wl = SyntheticWorkload(seed=0)
        arms_seen: dict[str, set[str]] = {}
        for i in range(1200):
            task = wl.sample_task()
            unit = f"user-{i % 300}"
            d = http.post("/v1/select", json={"task": task.text, "experiment": "explore-less",
                                              "unit_key": unit}, headers=client).json()
            o = wl.outcome(task, f"{d['provider']}/{d['model']}")
            r = http.post(f"/v1/events/{d['event_id']}/reward",
                          json={"quality": o.quality, "cost_usd": o.cost_usd}, headers=client)
            assert r.status_code == 200
            if i % 10 == 0:
                event = http.get(f"/v1/events/{d['event_id']}", headers=admin).json()
                assert event["experiment"] == "explore-less"
                arms_seen.setdefault(unit, set()).add(event["arm"])
        assert all(len(a) == 1 for a in arms_seen.values())  # sticky: one arm per unit
        assert set().union(*arms_seen.values()) == {"uniform", "bandit"}
        time.sleep(0.5)
        report = http.get("/v1/experiments/explore-less", headers=admin).json()
        arms = report["arms"]
        assert arms["uniform"]["requests"] + arms["bandit"]["requests"] == 1200
        (cmp,) = report["comparisons"]
        assert cmp["a"] == "uniform" and cmp["b"] == "bandit"
        assert cmp["significant"] and cmp["difference"] > 0.05
        r = http.post("/v1/experiments/explore-less/promote", json={"arm": "bandit"},
                      headers=admin)
        assert r.json()["status"] == "promoted"
        assert http.post("/v1/experiments/explore-less/promote", json={"arm": "zzz"},
                         headers=admin).status_code == 422
    # restart: the experiment, its promotion and each arm's learning come back
    with TestClient(create_app(settings)) as http:
        assert http.get("/v1/experiments", headers=admin).json() == ["explore-less"]
        report = http.get("/v1/experiments/explore-less", headers=admin).json()
        assert report["promoted"] == "bandit"
        d = http.post("/v1/select", json={"task": "hi", "experiment": "explore-less",
                                          "unit_key": "user-1"}, headers=client).json()
        event = http.get(f"/v1/events/{d['event_id']}", headers=admin).json()
        assert event["arm"] == "bandit"
        assert http.post("/v1/experiments/explore-less/stop",
                         headers=admin).json()["status"] == "stopped"

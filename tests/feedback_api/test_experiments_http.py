"""A/B experiments over HTTP (admin endpoints): in process and against the real server;
real VW, real SQLite."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from bandit_router.eval.simulation import SyntheticWorkload, demo_catalog
from feedback_api import KeyStore, Settings, create_app

from .conftest import Server


@pytest.mark.slow  # hundreds of rounds over HTTP
def test_experiment_lifecycle_over_http(tmp_path) -> None:
    settings, admin, client = _settings(tmp_path)
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
        for i in range(600):
            task = wl.sample_task()
            unit = f"user-{i % 150}"
            d = http.post("/v1/select", json={"task": task.text, "experiment": "explore-less",
                                              "unit_key": unit, "event_id": f"life-{i}"},
                          headers=client).json()  # named events: reproducible draws
            o = wl.outcome(task, f"{d['provider']}/{d['model']}")
            r = http.post(f"/v1/events/{d['event_id']}/reward",
                          json={"quality": o.quality, "cost_usd": o.cost_usd}, headers=client)
            assert r.status_code == 200
            if i % 10 == 0:
                event = http.get(f"/v1/events/{d['event_id']}", headers=client).json()
                assert event["experiment"] == "explore-less"
                arms_seen.setdefault(unit, set()).add(event["arm"])
        assert all(len(a) == 1 for a in arms_seen.values())  # sticky: one arm per unit
        assert set().union(*arms_seen.values()) == {"uniform", "bandit"}
        time.sleep(0.5)
        report = http.get("/v1/experiments/explore-less", headers=admin).json()
        arms = report["arms"]
        assert arms["uniform"]["requests"] + arms["bandit"]["requests"] == 600
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
        event = http.get(f"/v1/events/{d['event_id']}", headers=client).json()
        assert event["arm"] == "bandit"
        assert http.post("/v1/experiments/explore-less/stop",
                         headers=admin).json()["status"] == "stopped"


def _settings(tmp_path) -> tuple[Settings, dict[str, str], dict[str, str]]:
    db = f"sqlite:///{tmp_path / 'arms.db'}"
    keys = KeyStore(db)
    admin = {"Authorization": f"Bearer {keys.create(name='ops', scope='admin')[1]}"}
    client = {"Authorization": f"Bearer {keys.create(name='app', scope='client')[1]}"}
    keys.close()
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(demo_catalog().to_dict()))
    return (Settings(database_url=db, embedder="hash", cost_weight=50.0, learn_interval_s=0.05,
                     catalog_path=str(catalog)), admin, client)


@pytest.mark.slow  # hundreds of rounds over HTTP
def test_fixed_model_and_subset_arms_over_http_survive_a_restart(tmp_path) -> None:
    settings, admin, client = _settings(tmp_path)
    spec = {"name": "vs-strongest",
            "arms": {"large": {"fixed_model": "frontier/large"},
                     "cheap": {"models": ["tiny", "opencode/coder"], "exploration": "epsilon",
                               "epsilon": 0.3},
                     "bandit": {"gamma_scale": 100, "optimism": 0.2}}}
    with TestClient(create_app(settings)) as http:
        for arms, name in (({"a": {}, "b": {"fixed_model": "gpt-5"}}, "gpt-5"),
                           ({"a": {}, "b": {"models": ["tiny", "nope"]}}, "nope")):
            r = http.post("/v1/experiments", json={"name": "bad", "arms": arms},
                          headers=admin)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["type"] == "UnknownModelError"
            assert name in r.json()["error"]["message"]
        for arm in ({"fixed_model": "tiny", "models": ["tiny"]}, {"models": []},
                    {"fixed_model": ""}, {"models": "tiny"}, {"optimism": -1},
                    {"optimism": 0.2, "exploration": "epsilon"}):
            r = http.post("/v1/experiments", json={"name": "bad", "arms": {"a": {}, "b": arm}},
                          headers=admin)
            assert r.status_code == 422, (arm, r.text)
        assert http.get("/v1/experiments", headers=admin).json() == []  # nothing stored
        r = http.post("/v1/experiments", json=spec, headers=admin)
        assert r.status_code == 201, r.text
        report = r.json()
        assert report["control"] == "large"
        assert report["arms"]["large"]["fixed_model"] == "frontier/large"
        assert report["arms"]["cheap"]["models"] == ["opencode/coder", "budget/tiny"]
        assert report["arms"]["bandit"]["models"] is None
        wl = SyntheticWorkload(seed=1)
        models: dict[str, set[str]] = {"large": set(), "cheap": set(), "bandit": set()}
        arm_of: dict[str, str] = {}
        for i in range(300):
            task = wl.sample_task()
            d = http.post("/v1/select", json={"task": task.text, "experiment": "vs-strongest",
                                              "unit_key": f"user-{i % 90}",
                                              "event_id": f"arms-{i}"},
                          headers=client).json()  # named events: reproducible draws
            key = f"{d['provider']}/{d['model']}"
            arm = http.get(f"/v1/events/{d['event_id']}", headers=client).json()["arm"]
            arm_of[f"user-{i % 90}"] = arm
            models[arm].add(key)
            if arm == "large":
                assert d["probability"] == 1.0 and d["alternatives"] == []
            o = wl.outcome(task, key)
            assert http.post(f"/v1/events/{d['event_id']}/reward",
                             json={"quality": o.quality, "cost_usd": o.cost_usd,
                                   "latency_s": o.latency_s},
                             headers=client).status_code == 200
        assert models["large"] == {"frontier/large"}
        assert models["cheap"] == {"opencode/coder", "budget/tiny"}
        assert len(models["bandit"]) >= 3
        report = http.get("/v1/experiments/vs-strongest", headers=admin).json()
        arms = report["arms"]
        assert sum(a["requests"] for a in arms.values()) == 300
        assert arms["large"]["requests"] > 50 and arms["large"]["latency_s"]["n"] > 50
        assert arms["large"]["quality"]["value"] > 0.85
        assert [(c["a"], c["b"]) for c in report["comparisons"]] == [
            ("large", "cheap"), ("large", "bandit")]
        # a request's constraints that rule the fixed model out: 422 with the reasons
        unit = next(u for u, a in arm_of.items() if a == "large")
        body = {"task": "hi", "experiment": "vs-strongest", "unit_key": unit}
        r = http.post("/v1/select", json={**body, "constraints": {"excluded_models": ["large"]}},
                      headers=client)
        assert r.status_code == 422 and r.json()["error"]["type"] == "NoEligibleModelError"
        assert "excluded by the request" in r.json()["error"]["details"]["reasons"][
            "frontier/large"]
        r = http.post("/v1/select", json={**body, "constraints": {"allowed_models": ["zzz"]}},
                      headers=client)
        assert r.status_code == 422 and r.json()["error"]["type"] == "UnknownModelError"
    # restart: the definitions come back, restrictions included
    with TestClient(create_app(settings)) as http:
        report = http.get("/v1/experiments/vs-strongest", headers=admin).json()
        assert report["arms"]["large"]["fixed_model"] == "frontier/large"
        assert report["arms"]["cheap"]["models"] == ["opencode/coder", "budget/tiny"]
        assert sum(a["requests"] for a in report["arms"].values()) == 300
        # the optimistic arm's counts came back with its checkpoint
        bandit = next(r for r in http.app.state.experiments.routers()
                      if r.arm == "vs-strongest:bandit")
        assert bandit.policy.config.optimism == 0.2
        assert bandit.policy._learned == bandit.policy_version \
            == report["arms"]["bandit"]["requests"]
        r = http.post("/v1/experiments/vs-strongest/promote", json={"arm": "large"},
                      headers=admin)
        assert r.json()["status"] == "promoted"
        for i in range(5):
            d = http.post("/v1/select", json={"task": f"Tell me a fun fact about owls {i}",
                                              "experiment": "vs-strongest",
                                              "unit_key": f"new-{i}"}, headers=client).json()
            assert (d["model"], d["probability"]) == ("large", 1.0)


@pytest.mark.slow
def test_a_fixed_model_control_arm_on_the_real_server(server: Server) -> None:
    """Against the uvicorn process (real MiniLM, bundled catalog): the usual control arm,
    "always gpt-4o", next to the learning router and a small-models arm."""
    admin = httpx.Client(base_url=server.url,
                         headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30)
    app = httpx.Client(base_url=server.url,
                       headers={"Authorization": f"Bearer {server.client_key}"}, timeout=30)
    name = "gpt-4o-control"  # fixed: units are assigned to arms deterministically
    small = ["gpt-4o-mini", "gpt-4.1-nano", "groq/llama-3.1-8b-instant"]
    r = admin.post("/v1/experiments", json={"name": name, "arms": {
        "learning": {}, "gpt-4o": {"fixed_model": "openai/gpt-4o"},
        "small": {"models": small}}})
    assert r.status_code == 201, r.text
    assert r.json()["arms"]["small"]["models"] == [
        "openai/gpt-4o-mini", "openai/gpt-4.1-nano", "groq/llama-3.1-8b-instant"]
    r = admin.post("/v1/experiments", json={"name": f"{name}-bad", "arms": {
        "learning": {}, "gpt-5": {"fixed_model": "openai/gpt-5"}}})
    assert r.status_code == 422 and r.json()["error"]["type"] == "UnknownModelError"
    assert "openai/gpt-5" in r.json()["error"]["message"]
    assert f"{name}-bad" not in admin.get("/v1/experiments").json()
    wl = SyntheticWorkload(seed=11)
    by_arm: dict[str, list[dict]] = {"learning": [], "gpt-4o": [], "small": []}
    for i in range(45):
        task = wl.sample_task()
        d = app.post("/v1/select", json={"task": task.text, "experiment": name,
                                         "unit_key": f"user-{i % 15}"}).json()
        event = admin.get(f"/v1/events/{d['event_id']}").json()
        assert event["experiment"] == name
        by_arm[event["arm"]].append(d)
        quality = 0.9 if d["model"] == "gpt-4o" else 0.7
        assert app.post(f"/v1/events/{d['event_id']}/reward",
                        json={"quality": quality, "cost_usd": d["estimated_cost_usd"],
                              "latency_s": 1.0}).status_code == 200
    assert all(by_arm.values())
    assert {(d["provider"], d["model"], d["probability"]) for d in by_arm["gpt-4o"]} == {
        ("openai", "gpt-4o", 1.0)}
    assert all(d["model"] in {"gpt-4o-mini", "gpt-4.1-nano", "llama-3.1-8b-instant"}
               for d in by_arm["small"])
    report = admin.get(f"/v1/experiments/{name}").json()
    assert {a: s["requests"] for a, s in report["arms"].items()} == {
        a: len(ds) for a, ds in by_arm.items()}
    assert report["arms"]["gpt-4o"]["quality"]["value"] == pytest.approx(0.9)
    assert report["arms"]["gpt-4o"]["fixed_model"] == "openai/gpt-4o"
    assert admin.post(f"/v1/experiments/{name}/stop").json()["status"] == "stopped"


def test_a_stored_arm_whose_model_left_the_catalog_does_not_stop_the_service(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    settings, admin, client = _settings(tmp_path)
    with TestClient(create_app(settings)) as http:
        for name, model in (("keeps", "budget/tiny"), ("loses", "frontier/large")):
            r = http.post("/v1/experiments", json={"name": name, "arms": {
                "bandit": {}, "fixed": {"fixed_model": model}}}, headers=admin)
            assert r.status_code == 201
    smaller = demo_catalog().to_dict()
    smaller["models"] = [m for m in smaller["models"] if m["model"] != "large"]
    catalog = tmp_path / "smaller.json"
    catalog.write_text(json.dumps(smaller))
    with TestClient(create_app(settings.model_copy(update={"catalog_path": str(catalog)}))) \
            as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/v1/experiments", headers=admin).json() == ["keeps"]
        assert "experiment 'loses' is not loaded" in caplog.text
        r = http.post("/v1/select", json={"task": "hi", "experiment": "loses",
                                          "unit_key": "u"}, headers=client)
        assert r.status_code == 404


def test_knn_greedy_arm_over_http(tmp_path) -> None:
    settings, admin, client = _settings(tmp_path)
    spec = {"name": "vw-vs-knn", "arms": {"vw": {}, "knn": {"strategy": "knn_greedy",
                                                            "epsilon": 0.0}}}
    with TestClient(create_app(settings)) as http:
        bad = http.post("/v1/experiments", headers=admin,
                        json={"name": "bad", "arms": {"a": {}, "b": {"strategy": "magic"}}})
        assert bad.status_code == 422
        assert http.post("/v1/experiments", json=spec, headers=admin).status_code == 201
        seen: dict[str, list[float]] = {"vw": [], "knn": []}
        for i in range(60):
            d = http.post("/v1/select", headers=client,
                          json={"task": f"Explain topic {i}", "experiment": "vw-vs-knn",
                                "unit_key": f"u{i}"}).json()
            arm = http.get(f"/v1/events/{d['event_id']}", headers=client).json()["arm"]
            seen[arm].append(d["probability"])
        # epsilon 0: the kNN-greedy arm decides deterministically; VW's squareCB explores
        assert seen["knn"] and all(p == 1.0 for p in seen["knn"])
        assert seen["vw"] and any(p < 1.0 for p in seen["vw"])


def test_the_service_s_optimism_reaches_squarecb_arms_only(tmp_path) -> None:
    """With ``optimism`` and ``baseline_strength`` set for the service, an arm that explores
    otherwise is built without them (instead of failing as an invalid setting), a squareCB
    arm keeps them, and one that turns optimism off keeps the baseline."""
    settings, admin, _ = _settings(tmp_path)
    settings = settings.model_copy(update={"optimism": 0.2, "gamma_scale": 200.0,
                                           "baseline_strength": 10.0})
    with TestClient(create_app(settings)) as http:
        r = http.post("/v1/experiments", json={"name": "explore", "arms": {
            "eps": {"exploration": "epsilon", "epsilon": 0.1}, "square": {},
            "calm": {"optimism": 0.0}}}, headers=admin)
        assert r.status_code == 201, r.text
        policies = {r.arm.split(":")[1]: r.policy.config
                    for r in http.app.state.experiments.routers()}
        assert policies["eps"].exploration == "epsilon" and policies["eps"].optimism == 0.0
        assert policies["square"].optimism == 0.2 and policies["square"].gamma_scale == 200.0
        assert policies["square"].baseline_strength == 10.0
        assert policies["calm"].optimism == 0.0
        # a baseline is squareCB's, with or without optimism: the calm arm keeps it
        assert policies["eps"].baseline_strength == 0.0
        assert policies["calm"].baseline_strength == 10.0
        r = http.post("/v1/experiments", json={"name": "bad", "arms": {
            "a": {}, "b": {"exploration": "epsilon", "optimism": 0.2}}}, headers=admin)
        assert r.status_code == 422 and "optimism" in r.json()["error"]["message"]
        r = http.post("/v1/experiments", json={"name": "worse", "arms": {
            "a": {}, "b": {"exploration": "epsilon", "baseline_strength": 5.0}}},
            headers=admin)
        assert r.status_code == 422 and "baseline_strength" in r.json()["error"]["message"]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_names_no_database_can_store_are_refused_with_422(tmp_path, db: str,
                                                          request: pytest.FixtureRequest) -> None:
    """Issue #19: a lone surrogate or a NUL in an arm name or a budget scope was a 500."""
    settings, admin, _ = _settings(tmp_path)
    if db == "postgres":
        url = request.getfixturevalue("pg_url")
        keys = KeyStore(url)
        admin = {"Authorization": f"Bearer {keys.create(name='ops', scope='admin')[1]}"}
        keys.close()
        settings = settings.model_copy(update={"database_url": url})
    headers = {**admin, "Content-Type": "application/json"}
    with TestClient(create_app(settings)) as http:
        for bad in ("\ud800", "a\u0000", "x" * 65):
            body = {"name": "names", "arms": {"a": {}, bad: {}}}
            r = http.post("/v1/experiments", content=json.dumps(body), headers=headers)
            assert r.status_code == 422, (bad, r.text)
            assert "without NUL or lone surrogates" in r.json()["error"]["message"]
        for scope in ("tenant:a\u0000", "tenant:\udfff"):
            r = http.put("/v1/admin/budgets", headers=headers,
                         content=json.dumps({"scope": scope, "daily_limit": 1.0}))
            assert r.status_code == 422, (scope, r.text)
            assert "scope" in r.json()["error"]["message"]
        assert http.get("/v1/experiments", headers=admin).json() == []  # nothing stored
        r = http.post("/v1/experiments", headers=admin,
                      json={"name": "names", "arms": {"a": {}, "é ü": {}}})
        assert r.status_code == 201, r.text

"""The service's commands of ``bandit-router``: ``keys`` and ``report`` (``serve`` is
exercised by the service tests through uvicorn), and the library's commands through the same
entry point."""

from __future__ import annotations

import pytest

from feedback_api.cli import main


def test_the_entry_point_has_the_library_and_the_service_commands(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "replay", "bench", "serve", "keys", "report", "warm-start"):
        assert command in out
    assert main(["demo", "--rounds", "0"]) == 2  # a library command, dispatched from here


def test_keys_create_list_revoke(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from feedback_api import KeyStore

    db = f"sqlite:///{tmp_path / 'keys.db'}"
    assert main(["keys", "--database-url", db, "create", "--scope", "admin",
                 "--name", "ops"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    store = KeyStore(db)
    key = store.verify(secret)
    assert key is not None and key.scope == "admin" and key.name == "ops"
    assert main(["keys", "--database-url", db, "list"]) == 0
    listing = capsys.readouterr().out
    assert "admin" in listing and "live" in listing and secret not in listing
    assert main(["keys", "--database-url", db, "revoke", str(key.id)]) == 0
    assert store.verify(secret) is None
    assert main(["keys", "--database-url", db, "revoke", str(key.id)]) == 1
    with store._sessions() as s:  # only the hash is stored
        from sqlalchemy import text

        stored = s.execute(text("SELECT key_hash FROM br_api_keys")).scalar_one()
    assert secret not in stored and len(stored) == 64
    store.close()


def test_keys_expire_and_rotate(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from feedback_api import KeyStore

    db = f"sqlite:///{tmp_path / 'keys.db'}"
    assert main(["keys", "--database-url", db, "create", "--name", "app",
                 "--expires-in-days", "30"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    store = KeyStore(db)
    key = store.verify(first)
    assert key is not None and key.expires_at is not None
    assert 29.9 * 86_400 < key.expires_at - time.time() <= 30 * 86_400
    assert main(["keys", "--database-url", db, "rotate", str(key.id)]) == 0  # 24 h grace
    second = capsys.readouterr().out.strip().splitlines()[-1]
    new = store.verify(second)
    assert new is not None and new.id != key.id and new.tenant == key.id == key.tenant
    assert (new.name, new.scope, new.expires_at) == ("app", "client", None)
    old = store.verify(first)  # still works, until the grace period ends
    assert old is not None and old.expires_at is not None
    assert 23.9 * 3600 < old.expires_at - time.time() <= 24 * 3600
    assert main(["keys", "--database-url", db, "rotate", str(new.id), "--grace-hours",
                 "0"]) == 0
    third = capsys.readouterr().out.strip().splitlines()[-1]
    assert store.verify(second) is None  # stopped at once
    assert store.verify(third).tenant == key.id  # type: ignore[union-attr]
    assert main(["keys", "--database-url", db, "rotate", str(new.id)]) == 1  # not live
    assert main(["keys", "--database-url", db, "list"]) == 0
    listing = capsys.readouterr().out
    assert "expired" in listing and "expires 20" in listing
    _, secret = store.create(name="short", scope="client", expires_in_s=0.2)
    assert store.verify(secret) is not None
    time.sleep(0.3)
    assert store.verify(secret) is None
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            store.create(name="x", scope="client", expires_in_s=bad)
    store.close()


def test_report_command(make_router, clock, sqlite_url: str, tmp_path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io

    from bandit_router.eval.reports import CostReport, cost_report, parse_time
    from tests.eval.test_reports import DAY2, build_traffic

    router = make_router(clock=clock)
    build_traffic(router, clock)
    # a human table by default
    assert main(["report", "--database-url", sqlite_url, "--by", "day,key"]) == 0
    out = capsys.readouterr().out
    assert "reference: frontier/large" in out and "(total)" in out and "team-b" in out
    # CSV to a file: the library's report
    path = tmp_path / "cost.csv"
    assert main(["report", "--database-url", sqlite_url, "--since", DAY2, "--until", DAY2,
                 "--by", "model,provider", "--format", "csv", "--output", str(path)]) == 0
    assert str(path) in capsys.readouterr().out
    want = cost_report(router, since=parse_time(DAY2), until=parse_time(DAY2, end=True),
                       group_by=("model", "provider"))
    assert path.read_text() == want.to_csv()
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows[-1]["model"] == "(total)" and int(rows[-1]["requests"]) == 4
    # JSON on stdout, with the reference named
    assert main(["report", "--database-url", sqlite_url, "--format", "json",
                 "--reference", "budget/tiny"]) == 0
    got = CostReport.from_json(capsys.readouterr().out)
    assert got == cost_report(router, reference="budget/tiny")
    assert got.reference_fallbacks == 4


def test_report_command_against_every_fixed_model(make_router, sqlite_url: str, tmp_path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from bandit_router.eval.fixed import fixed_models
    from tests.eval.test_fixed import truth_traffic

    router = make_router()
    truth_traffic(router, 120)
    assert main(["report", "--database-url", sqlite_url, "--fixed-models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("router: mean reward") and "openlang/polyglot" in out
    assert out == fixed_models(router).to_table()
    path = tmp_path / "fixed.json"
    assert main(["report", "--database-url", sqlite_url, "--fixed-models", "--format", "json",
                 "--level", "0.99", "--output", str(path)]) == 0
    assert "fixed-model report" in capsys.readouterr().out
    assert json.loads(path.read_text()) == fixed_models(router, level=0.99).to_dict()
    # the options of one report are refused with the other
    for args, said in ((["--fixed-models", "--format", "csv"], "--format csv is not for"),
                       (["--fixed-models", "--by", "model"], "--by is not for --fixed-models"),
                       (["--level", "0.99", "--arm", "x"],
                        "--level, --arm are not for the cost report")):
        assert main(["report", "--database-url", sqlite_url, *args]) == 2
        assert said in capsys.readouterr().err
    assert main(["report", "--database-url", sqlite_url, "--fixed-models", "--arm",
                 "elsewhere", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 0  # no request of that arm
    with pytest.raises(SystemExit):  # only the levels the intervals are computed at
        main(["report", "--database-url", sqlite_url, "--fixed-models", "--level", "0.5"])


def test_report_command_reads_the_service_setting(make_router, clock, sqlite_url: str,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.eval.test_reports import build_traffic

    build_traffic(make_router(clock=clock), clock, history=False)
    monkeypatch.setenv("BANDIT_ROUTER_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("BANDIT_ROUTER_CONFIG_FILE", raising=False)
    assert main(["report", "--by", "", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] == [] and data["total"]["requests"] == 7


def test_report_command_errors(tmp_path, sqlite_url: str, make_router,
                               capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    assert main(["report", "--database-url", missing]) == 1
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()  # not created by mistake
    make_router()  # creates the database
    for args in (["--by", "day,week"], ["--since", "2027-02-01", "--until", "2027-01-01"],
                 ["--since", "yesterday"], ["--reference", "tiny"],
                 ["--output", str(tmp_path / "no-such-folder" / "report.csv")]):
        assert main(["report", "--database-url", sqlite_url, *args]) == 2
        assert "bandit-router report:" in capsys.readouterr().err
    # the empty period is told in dates, not Unix seconds
    assert main(["report", "--database-url", sqlite_url, "--since", "2027-02-01",
                 "--until", "2027-01-01"]) == 2
    assert "since (2027-02-01 00:00:00 UTC)" in capsys.readouterr().err
    for command in (["report"], ["keys"]):  # a database the service cannot use
        assert main([*command, "--database-url", "mysql://db/router",
                     *(["list"] if command == ["keys"] else [])]) == 2
        assert "is not a SQLite or PostgreSQL URL" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--database-url", sqlite_url, "--format", "xml"])


@pytest.fixture
def service_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's own defaults: no BANDIT_ROUTER_* setting of the developer's (a config
    file, a catalog, another embedder) reaches the command; the model cache stays."""
    import os

    for name in list(os.environ):
        if name.startswith("BANDIT_ROUTER_") and name not in ("BANDIT_ROUTER_CACHE",
                                                              "BANDIT_ROUTER_DATA"):
            monkeypatch.delenv(name)


def _labelled_log(path, n: int = 20) -> None:
    """``n`` tasks, each with both models' outcomes (the catalog's keys): a cheap model that
    answers the arithmetic, a strong one that answers everything."""
    import json

    rows = []
    for i in range(n):
        task = f"what is {i} plus {i + 1}?" if i % 2 else f"write a haiku about the number {i}"
        for model, quality, cost in (("groq/llama-3.1-8b-instant", float(i % 2), 0.0001),
                                     ("openai/gpt-4o", 1.0, 0.01)):
            rows.append({"task_id": f"t{i}", "task": task, "model": model,
                         "quality": quality, "cost_usd": cost})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_warm_start_learns_labelled_history_into_the_service_database(
        tmp_path, capsys: pytest.CaptureFixture[str], service_defaults: None) -> None:
    from bandit_router import Router

    history, url = tmp_path / "evals.jsonl", f"sqlite:///{tmp_path / 'router.db'}"
    _labelled_log(history)
    assert main(["warm-start", str(history), "--database-url", url]) == 0
    assert "40 reward(s) learned" in capsys.readouterr().out
    # again: every record is already in the log, nothing is learned twice
    assert main(["warm-start", str(history), "--database-url", url]) == 0
    assert "0 reward(s) learned" in capsys.readouterr().out
    # a router opened on the database afterwards starts from the 40 learned rewards
    with Router(database_url=url) as router:
        decision = router.select("what is 3 plus 4?")
        assert decision.policy_version == 40


def test_warm_start_errors(tmp_path, capsys: pytest.CaptureFixture[str],
                           service_defaults: None) -> None:
    url = f"sqlite:///{tmp_path / 'router.db'}"
    assert main(["warm-start", str(tmp_path / "missing.jsonl"), "--database-url", url]) == 2
    assert "no file at" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "hello", "model": "openai/gpt-4o"}\n')  # no task_id, no outcome
    assert main(["warm-start", str(bad), "--database-url", url]) == 2
    assert "task_id" in capsys.readouterr().err
    logged = tmp_path / "logged.jsonl"
    logged.write_text('{"task": "hello", "chosen": "openai/gpt-4o", "probability": 2.0, '
                      '"quality": 1.0, "cost_usd": 0.01}\n')  # a probability over 1
    assert main(["warm-start", str(logged), "--logged", "--database-url", url]) == 2
    assert "probability" in capsys.readouterr().err
    broken = tmp_path / "logged.jsonl.gz"
    broken.write_bytes(b"not gzip at all")  # a message, not a traceback
    assert main(["warm-start", str(broken), "--logged", "--database-url", url]) == 2
    assert "bandit-router warm-start:" in capsys.readouterr().err


def test_warm_start_waits_for_no_learner_replica(tmp_path, capsys: pytest.CaptureFixture[str],
                                                 service_defaults: None) -> None:
    from bandit_router import LearnerLock

    history, url = tmp_path / "evals.jsonl", f"sqlite:///{tmp_path / 'router.db'}"
    _labelled_log(history, n=2)
    learner = LearnerLock(url)  # as a "serve --role learner" replica holds it
    assert learner.acquire()
    try:
        assert main(["warm-start", str(history), "--database-url", url]) == 1
        assert "learner lock" in capsys.readouterr().err
    finally:
        learner.release()
    assert main(["warm-start", str(history), "--database-url", url]) == 0
    assert "4 reward(s) learned" in capsys.readouterr().out

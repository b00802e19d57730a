from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bandit_router.cli import main


def test_demo_fast(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rounds", "300", "--report-every", "100", "--fast"]) == 0
    out = capsys.readouterr().out
    assert out.count("traffic:") == 3
    assert "always-strongest" in out and "% saved" in out
    assert "best: opencode/coder" in out


def test_demo_rejects_bad_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rounds", "0"]) == 2


@pytest.mark.slow
def test_demo_console_script_with_the_real_embedder(tmp_path) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "bandit-router")
    db = tmp_path / "demo.db"
    proc = subprocess.run([exe, "demo", "--rounds", "150", "--report-every", "50",
                           "--database-url", f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=300, check=True)
    assert "all-MiniLM-L6-v2" in proc.stdout
    assert proc.stdout.count("traffic:") == 3
    assert db.exists()  # the decisions and rewards went to the named database


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


def test_replay_command(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "rounds.csv"
    assert main(["replay", "synthetic", "--limit", "400", "--cost-weight", "50",
                 "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "whole stream (400 rounds)" in out and "last half (200 rounds)" in out
    for name in ("router", "random", "cheapest", "strongest", "oracle"):
        assert f"  {name} " in out
    assert "zero router at that cost" in out
    assert len(log.read_text().splitlines()) == 401


def test_replay_command_on_a_user_log(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"task_id": str(i), "task": f"ask {i}", "model": m,
                                          "quality": q, "cost_usd": c})
                              for i in range(30)
                              for m, q, c in (("x/big", 1.0, 0.01), ("y/small", 0.5, 0.0001))))
    assert main(["replay", str(path), "--all-models"]) == 0
    out = capsys.readouterr().out
    assert "always x/big" in out and "30 rounds" in out

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

"""docs/configuration.md: its tables are what the code says, and its TOML example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedback_api import Settings
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def _renderer():  # type: ignore[no-untyped-def]
    return load_script("scripts/config_doc.py")


def test_the_tables_are_what_the_code_says() -> None:
    doc = _renderer()
    assert doc.current() == doc.render(), "run: python scripts/config_doc.py --write"
    assert "| `thompson_scale` | `0.5` |" in doc.render()  # a value read from PolicyConfig


def test_the_toml_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = re.search(r"^```toml\n(.*?)^```", text, re.M | re.S)
    assert block is not None
    path = tmp_path / "router.toml"
    path.write_text(block.group(1))
    monkeypatch.setenv("BANDIT_ROUTER_CONFIG_FILE", str(path))
    s = Settings()
    assert s.router_config().cost_weight == 50.0
    assert s.router_config().task_clusters == (4, 8)
    assert s.database_url.startswith("postgresql")

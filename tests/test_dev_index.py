"""benchmarks/results/dev/INDEX.md: one line per kept trial, written from the trials' JSON
by scripts/dev_index.py, so that a trial is found before it is run again."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import load_script


@pytest.fixture
def index() -> ModuleType:
    return load_script("scripts/dev_index.py")


def test_the_index_lists_every_trial_kept(index: ModuleType) -> None:
    assert index.main(["--check"]) == 0, "python scripts/dev_index.py --write"
    listed = index.INDEX.read_text()
    for path in index.DEV.glob("*.json"):
        assert f"| {path.name} |" in listed


def test_a_new_trial_is_listed_with_its_settings_note_and_figures(
        index: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "DEV", tmp_path)
    monkeypatch.setattr(index, "INDEX", tmp_path / "INDEX.md")
    monkeypatch.setattr(index, "ROOT", tmp_path)
    (tmp_path / "quality-dev-x.json").write_text(json.dumps({
        "seeds": [0, 1], "note": "a | trial",
        "settings": {"overrides": {"policy": {"learning_rate": 0.25}, "router": {}}},
        "targets": [{"workload": "routerdc7", "figure": "0.5040"}]}))
    assert index.main(["--check"]) == 1  # not written yet
    assert index.main(["--write"]) == 0
    assert index.main(["--check"]) == 0
    line = next(x for x in index.INDEX.read_text().splitlines() if "quality-dev-x" in x)
    assert line == ("| quality-dev-x.json | 0 1 | policy.learning_rate=0.25 | a / trial "
                    "| routerdc7: 0.5040 |")
    (tmp_path / "peers-y.json").write_text(json.dumps({"summary": [
        {"name": "bandit-router (Router defaults, replay)", "regret_mean": 421.4},
        {"name": "vw_squarecb", "regret_mean": 584.0}]}))
    assert index.main(["--check"]) == 1  # a file added without the index
    assert "| peers-y.json |  |  |  | bandit-router (Router defaults, replay): regret 421 |" \
        in index.render()

"""The notebooks run, on a small slice, so they never rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "simulations" / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name, figures", [
    ("replay_mmlu.ipynb", ["cost_quality_plane.png", "learning_curve.png"]),
    ("offline_evaluation.ipynb", ["offline_evaluation.png"]),
    ("ab_experiment.ipynb", ["ab_experiment.png"]),
])
def test_notebook_runs(name: str, figures: list[str], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDIT_ROUTER_NOTEBOOK_LIMIT", "600")
    monkeypatch.setenv("BANDIT_ROUTER_NOTEBOOK_OUT", str(tmp_path))
    data = Path(os.environ.get("BANDIT_ROUTER_DATA", "../shared/data")).resolve()
    monkeypatch.setenv("BANDIT_ROUTER_DATA", str(data))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 10_000

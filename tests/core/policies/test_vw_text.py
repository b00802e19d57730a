"""VW's text format as the adapter writes it."""

from __future__ import annotations

import numpy as np

from bandit_router.core.policies._vw_text import ExampleText


def test_a_projection_reduces_a_vector_of_its_input_dimension_only() -> None:
    text = ExampleText(projection=np.ones((64, 8), np.float32))
    assert len(text.features({"E": np.ones(64, np.float32) / 8}).split()) == 1 + 8
    assert len(text.features({"E": np.ones(16, np.float32)}).split()) == 1 + 16


def test_feature_names_are_escaped() -> None:
    line = ExampleText().features({"M": {"openai/gpt 4o:mini|x": 1.0}})
    assert line == "|M openai/gpt_4o_mini_x"


def test_templated_namespaces_match_the_plain_formatting() -> None:
    """Numeric namespaces are written through a template of their names; zeros are left out
    and a value of 1 is written bare, exactly as feature by feature."""
    text = ExampleText()
    rng = np.random.default_rng(5)
    choices = [0.0, -0.0, 1.0, 2, 0.5, float("nan"), np.float32(0.1), 1e-9, -3.25]
    for _ in range(2000):
        n = int(rng.integers(0, 5))
        names = ["f", "g h", "50%", "a%sb", "%%", "x:y"]
        values = {f"{names[int(rng.integers(len(names)))]}{j}":
                  choices[int(rng.integers(len(choices)))] if rng.random() < 0.5
                  else float(rng.normal()) for j in range(n)}
        assert text._namespace("A", values) == f"|A {text._body(values)}", values


def test_the_last_shared_line_is_reused_only_for_the_same_context() -> None:
    text = ExampleText()
    first = text.shared({"E": np.array([0.5, 0.0, 1.0], np.float32), "T": {"code": 1.0}})
    assert first == "shared |E 0:0.5 2:1 |T code"
    assert text.shared({"E": np.array([0.5, 0.0, 1.0], np.float32), "T": {"code": 1.0}}) == first
    assert text.shared({"E": np.array([0.5, 0.0, 2.0], np.float32),
                        "T": {"code": 1.0}}) == "shared |E 0:0.5 2:2 |T code"

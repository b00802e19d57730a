from __future__ import annotations

import numpy as np

from bandit_router._features import _CODE, _count_digits, _has_code, estimate_tokens, task_features


def test_estimate_tokens_grows_with_length() -> None:
    assert estimate_tokens("a") == 1
    assert estimate_tokens("x" * 400) == 100


def test_task_features_flags() -> None:
    code = task_features("```python\ndef f(x):\n    return x\n```")
    assert code["code"] == 1.0 and code["lines"] > 0
    assert task_features("Translate 'hi' to French")["translate"] == 1.0
    assert task_features("Summarize this text")["summarise"] == 1.0
    assert task_features("Solve 3x + 2 = 11")["math"] == 1.0
    assert task_features("how are you")["question"] == 1.0
    assert task_features("Hello there")["code"] == 0.0
    long, short = task_features("word " * 1000), task_features("word")
    assert long["chars"] > short["chars"] and long["words"] > short["words"]


def test_the_fast_code_and_digit_tests_agree_with_the_plain_ones() -> None:
    """``_has_code`` runs ``_CODE``'s alternatives one at a time and ``_count_digits`` counts
    in one C pass: both must agree with the plain definitions on every text."""
    pieces = ["def ", "undef ", "class ", "subclass ", "import ", "reimport ", "function",
              "functional", "#include", "=>", "= >", ";", "; \n", ";x\n", "{", "{ \n", "{x",
              "```", "``", "\n", " ", "a", "9", "٣", "x1", "é", "\t", "\r\n"]
    rng = np.random.default_rng(0)
    texts = ["", "undefined; x", "a{\n", "subclass of functional", "٣ digits 12"]
    texts += ["".join(rng.choice(pieces, size=int(rng.integers(1, 12))))
              for _ in range(3000)]
    for text in texts:
        assert _has_code(text) == (_CODE.search(text) is not None), repr(text)
        assert _count_digits(text) == sum(map(str.isdigit, text)), repr(text)

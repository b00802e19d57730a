from __future__ import annotations

import math

import numpy as np

from bandit_router.core._features import (
    _CODE,
    _MATH,
    _QUESTION,
    _SUMMARY,
    _TRANSLATE,
    _has_code,
    estimate_tokens,
    task_features,
)


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


def test_the_fast_code_test_agrees_with_the_plain_one() -> None:
    """``_has_code`` runs ``_CODE``'s alternatives one at a time: it must agree with the
    plain search on every text."""
    pieces = ["def ", "undef ", "class ", "subclass ", "import ", "reimport ", "function",
              "functional", "#include", "=>", "= >", ";", "; \n", ";x\n", "{", "{ \n", "{x",
              "```", "``", "\n", " ", "a", "9", "٣", "x1", "é", "\t", "\r\n"]
    rng = np.random.default_rng(0)
    texts = ["", "undefined; x", "a{\n", "subclass of functional", "٣ digits 12"]
    texts += ["".join(rng.choice(pieces, size=int(rng.integers(1, 12))))
              for _ in range(3000)]
    for text in texts:
        assert _has_code(text) == (_CODE.search(text) is not None), repr(text)


def _plain_features(text: str) -> dict[str, float]:
    """The features by their plain definitions: one regex search each, ``str.split``."""
    n = len(text)
    return {
        "chars": math.log1p(n) / 10.0,
        "words": math.log1p(len(text.split())) / 8.0,
        "lines": math.log1p(text.count("\n") + 1) / 5.0,
        "code": float(_CODE.search(text) is not None),
        "math": float(_MATH.search(text) is not None),
        "question": float(text.rstrip().endswith("?") or _QUESTION.match(text) is not None),
        "translate": float(_TRANSLATE.search(text) is not None),
        "summarise": float(_SUMMARY.search(text) is not None),
        "digits": sum(map(str.isdigit, text)) / max(1, n),
    }


def test_task_features_equal_their_plain_definitions() -> None:
    """ASCII texts take byte-level passes (word count, digit count, the digit-operator-digit
    test) and literal pre-checks; every feature must equal its plain definition, on
    generated texts full of near misses and on texts that are not ASCII."""
    pieces = ["3", " ", "+", "-", "*", "/", "^", "=", "x", "\t", "\n", "\x0b", "\x0c", "\r",
              "\x1c", "\x1f", "\x85", "\xa0", "solve", "Solve", "SOLVE", "resolve", "solver",
              "\\frac", "\\FRAC", "\\sum", "equation", "Equations", "integral", "integrals",
              "translate", "TL;DR", "summary", "def ", "{", ";", "٣", "é", "\u212a", "?", "Why",
              "word", "1.5", "a-b", "2 -", " 4"]
    rng = np.random.default_rng(1)
    texts = ["", " ", "\x1c", "1+1", "1 \x1c+\x1f 1", "x\u2003=\u20033", "solve it", "3 ٣"]
    texts += ["".join(rng.choice(pieces, size=int(rng.integers(1, 16))))
              for _ in range(5000)]
    for text in texts:
        assert task_features(text) == _plain_features(text), repr(text)

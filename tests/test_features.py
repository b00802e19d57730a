from __future__ import annotations

from bandit_router._features import estimate_tokens, task_features


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

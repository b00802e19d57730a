"""Features of a task that the policy sees beside its embedding."""

from __future__ import annotations

import math
import re

__all__ = ["estimate_tokens", "task_features"]

_CODE = re.compile(r"```|\bdef |\bclass |\bimport |#include|\bfunction\b|=>|;\s*$|\{\s*$",
                   re.MULTILINE)
_MATH = re.compile(r"\d\s*[-+*/^=]\s*\d|\\frac|\\sum|\bsolve\b|\bequation\b|\bintegral\b",
                   re.IGNORECASE)
_QUESTION = re.compile(r"^\s*(what|why|how|when|where|who|which|is|are|can|does|do)\b",
                       re.IGNORECASE)
_TRANSLATE = re.compile(r"\btranslat", re.IGNORECASE)
_SUMMARY = re.compile(r"\bsummar|\btl;?dr\b", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of a text's token count: about four characters a token,
    the usual rule for English with BPE tokenizers. Pass ``input_tokens`` to
    :meth:`Router.select` when you know better.

    >>> estimate_tokens("Translate 'Hello' to French")
    7
    """
    return max(1, math.ceil(len(text) / 4))


def task_features(text: str) -> dict[str, float]:
    """Cheap, interpretable features of a task text, in [0, ~1].

    >>> f = task_features("What is 2 + 2?")
    >>> f["math"], f["question"], f["code"], f["translate"]
    (1.0, 1.0, 0.0, 0.0)
    """
    n_chars = len(text)
    lines = text.count("\n") + 1
    return {
        "chars": math.log1p(n_chars) / 10.0,
        "words": math.log1p(len(text.split())) / 8.0,
        "lines": math.log1p(lines) / 5.0,
        "code": 1.0 if _CODE.search(text) else 0.0,
        "math": 1.0 if _MATH.search(text) else 0.0,
        "question": 1.0 if text.rstrip().endswith("?") or _QUESTION.match(text) else 0.0,
        "translate": 1.0 if _TRANSLATE.search(text) else 0.0,
        "summarise": 1.0 if _SUMMARY.search(text) else 0.0,
        "digits": sum(ch.isdigit() for ch in text) / max(1, n_chars),
    }

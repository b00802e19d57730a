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
#: Strings every match of a pattern contains (lower-case: compared with an ASCII text
#: lowered). A pattern runs only on texts that hold one of them, with the same result:
#: Python's regex engine tries every alternative at every position, which is slow.
#: ``_CODE`` split into its alternatives: (literal every match holds, pattern or ``None`` when
#: the literal is the whole alternative).
_CODE_PARTS: tuple[tuple[str, re.Pattern[str] | None], ...] = (
    ("```", None), ("#include", None), ("=>", None),
    ("def ", re.compile(r"\bdef ")), ("class ", re.compile(r"\bclass ")),
    ("import ", re.compile(r"\bimport ")), ("function", re.compile(r"\bfunction\b")),
    (";", re.compile(r";\s*$", re.MULTILINE)), ("{", re.compile(r"\{\s*$", re.MULTILINE)),
)
#: ``_MATH`` less its first branch, split as ``_CODE_PARTS`` (for lower-case ASCII text)
_MATH_WORD_PARTS: tuple[tuple[str, re.Pattern[str] | None], ...] = (
    ("\\frac", None), ("\\sum", None), ("solve", re.compile(r"\bsolve\b")),
    ("equation", re.compile(r"\bequation\b")), ("integral", re.compile(r"\bintegral\b")),
)
#: For ASCII text, as bytes: the characters ``str.isspace`` (and the regex ``\s``) call
#: whitespace; a table mapping them to b" " and every other byte to b"x" (words are where
#: " x" turns up); one mapping digits to b"0", the operators of ``_MATH``'s first branch
#: (``\d\s*[-+*/^=]\s*\d``) to b"+" and the rest to b"." (with the whitespace deleted, it
#: holds b"0+0" exactly where that branch matches)
_SPACE = bytes(c for c in range(128) if chr(c).isspace())
_WORDS = bytes(32 if chr(c).isspace() else 120 for c in range(256))
_OPERATIONS = bytes(48 if chr(c).isdigit() and c < 128 else 43 if chr(c) in "-+*/^=" else 46
                    for c in range(256))
_TRANSLATE_HINTS = ("translat",)
_SUMMARY_HINTS = ("summar", "tldr", "tl;dr")


def _found(pattern: re.Pattern[str], text: str, lowered: str | None,
           hints: tuple[str, ...]) -> bool:
    """``pattern.search(text)``, skipped where ``lowered`` (the text in lower case, or
    ``None`` when it is not ASCII and case folding is not that simple) has none of
    ``hints``."""
    if lowered is not None and not any(h in lowered for h in hints):
        return False
    return pattern.search(text) is not None


def estimate_tokens(text: str = "", *, chars: int | None = None) -> int:
    """A tokenizer-free estimate of a text's token count: about four characters a token,
    the usual rule for English with BPE tokenizers. Pass ``input_tokens`` to
    :meth:`Router.select` when you know better.

    >>> estimate_tokens("Translate 'Hello' to French"), estimate_tokens(chars=4000)
    (7, 1000)
    """
    return max(1, math.ceil((len(text) if chars is None else chars) / 4))


def task_features(text: str) -> dict[str, float]:
    """Cheap, interpretable features of a task text, in [0, ~1].

    >>> f = task_features("What is 2 + 2?")
    >>> f["math"], f["question"], f["code"], f["translate"]
    (1.0, 1.0, 0.0, 0.0)
    """
    n_chars = len(text)
    lines = text.count("\n") + 1
    lowered: str | None = None
    if text.isascii():  # byte-level passes in C, with the results of the plain ones
        lowered = text.lower()
        raw = text.encode("ascii")
        marks = raw.translate(_WORDS)
        words = marks.count(b" x") + (marks[:1] == b"x")
        math_ = (b"0+0" in raw.translate(_OPERATIONS, _SPACE)
                 or _has_any(lowered, _MATH_WORD_PARTS))
        digits = len(raw) - len(raw.translate(None, b"0123456789"))
    else:
        words = len(text.split())
        math_ = _MATH.search(text) is not None
        digits = sum(map(str.isdigit, text))
    return {
        "chars": math.log1p(n_chars) / 10.0,
        "words": math.log1p(words) / 8.0,
        "lines": math.log1p(lines) / 5.0,
        "code": 1.0 if _has_code(text) else 0.0,
        "math": 1.0 if math_ else 0.0,
        "question": 1.0 if text.rstrip().endswith("?") or _QUESTION.match(text) else 0.0,
        "translate": 1.0 if _found(_TRANSLATE, text, lowered, _TRANSLATE_HINTS) else 0.0,
        "summarise": 1.0 if _found(_SUMMARY, text, lowered, _SUMMARY_HINTS) else 0.0,
        "digits": digits / max(1, n_chars),
    }


def _has_any(text: str, parts: tuple[tuple[str, re.Pattern[str] | None], ...]) -> bool:
    """Whether one of ``parts`` (a literal every match holds, and the alternative's
    pattern, ``None`` when it is the literal alone) is in ``text``: a search for an
    alternation, one alternative at a time, each only where its literal is. Several times
    faster on long texts, as Python's regex engine tries every alternative everywhere."""
    for hint, pattern in parts:
        if hint in text and (pattern is None or pattern.search(text) is not None):
            return True
    return False


def _has_code(text: str) -> bool:
    """``_CODE.search(text)``, by :func:`_has_any` on its alternatives."""
    return _has_any(text, _CODE_PARTS)

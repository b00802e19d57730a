"""Chat messages as the router's task: the last user turn first, then a compact context;
bad shapes are typed errors. With the real embedder, requests that share a long few-shot
prefix get different vectors and, once learned, different decisions (issue #18)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bandit_router import InvalidTaskError, RouterConfig
from bandit_router.core._messages import CONTEXT_CHARS, LAST_TURN_CHARS, task_of

FEW_SHOT = " ".join(
    f"Example {i}. Question: what is the capital of country number {i}? Answer: city {i}."
    for i in range(60))  # ~4,500 characters shared by every request


def test_the_last_user_turn_comes_first_then_a_compact_context() -> None:
    task, chars = task_of([
        {"role": "system", "content": FEW_SHOT},
        {"role": "user", "content": "Translate 'cat' to French."},
        {"role": "assistant", "content": "chat"},
        {"role": "user", "content": [{"type": "text", "text": "And 'dog'?"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
    ])
    first, context = task.split("\n")
    assert first == "And 'dog'?"
    assert context.startswith("system: Example 0.") and "before: Translate 'cat'" in context
    assert len(context) < 2 * CONTEXT_CHARS + 40
    assert chars == len(FEW_SHOT) + len("Translate 'cat' to French.") + 4 + len("And 'dog'?")


def test_a_long_last_turn_keeps_its_tail() -> None:
    question = "So, which prime number follows 89?"
    task, _ = task_of([{"role": "user", "content": FEW_SHOT + " " + question}])
    assert task.endswith(question) and len(task) <= LAST_TURN_CHARS


@pytest.mark.parametrize("messages", [
    [], "hello", [{"role": "user"}], [{"role": "system", "content": "be nice"}],
    [{"role": "wizard", "content": "hi"}], [{"role": "user", "content": 42}],
    [{"role": "user", "content": [{"type": "text"}]}], ["hi"],
    [{"role": "user", "content": "   "}],
])
def test_bad_messages_are_typed_errors(messages: object) -> None:
    with pytest.raises(InvalidTaskError):
        task_of(messages)  # type: ignore[arg-type]


MATH = [f"What is {a} times {b}? Show the arithmetic." for a, b in
        [(17, 23), (45, 12), (81, 7), (66, 34), (29, 58), (91, 13), (38, 47), (72, 19)]]
CODE = [f"Write a Python function named {n} that reverses a linked list in place."
        for n in ["flip", "turn", "swap_nodes", "rev", "invert", "backwards", "mirror", "undo"]]


def _chat(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": FEW_SHOT}, {"role": "user", "content": question}]


def test_a_shared_few_shot_prefix_no_longer_hides_the_question(minilm) -> None:
    joined = minilm.embed([FEW_SHOT + "\n" + q for q in MATH[:3] + CODE[:3]])
    as_chat = minilm.embed([task_of(_chat(q))[0] for q in MATH[:3] + CODE[:3]])
    one_turn = minilm.embed([task_of([{"role": "user", "content": FEW_SHOT + " " + q}])[0]
                             for q in MATH[:3] + CODE[:3]])

    def closest_pair(v: np.ndarray) -> float:
        sims = v @ v.T
        return float(sims[~np.eye(len(v), dtype=bool)].min())

    assert closest_pair(joined) > 0.99  # the problem: truncation leaves only the prefix
    assert closest_pair(as_chat) < 0.8 and closest_pair(one_turn) < 0.8
    # math and code questions sit apart through the messages
    cross = as_chat[:3] @ as_chat[3:].T
    within = as_chat[:3] @ as_chat[:3].T
    assert cross.max() < within[~np.eye(3, dtype=bool)].min()


@pytest.mark.slow  # 320 decisions with the real embedder
def test_chat_requests_with_a_shared_prefix_get_different_decisions(
        make_router, minilm) -> None:
    router = make_router(embedder=minilm, config=RouterConfig(cost_weight=0.0))
    best = {"math": "budget/tiny", "code": "opencode/coder"}
    for i in range(320):
        kind, pool = ("math", MATH[:6]) if i % 2 else ("code", CODE[:6])
        d = router.select(_chat(pool[i // 2 % 6]), event_id=f"chat-{i}")
        router.reward(d.event_id, quality=1.0 if f"{d.provider}/{d.model}" == best[kind]
                      else 0.0, cost_usd=0.0, latency_s=0.0)
    picks = {kind: Counter() for kind in best}
    for kind, held_out in (("math", MATH[6:]), ("code", CODE[6:])):
        for j in range(20):
            d = router.select(_chat(held_out[j % 2]), event_id=f"probe-{kind}-{j}")
            picks[kind][f"{d.provider}/{d.model}"] += 1
    assert picks["math"].most_common(1)[0][0] == best["math"], picks
    assert picks["code"].most_common(1)[0][0] == best["code"], picks

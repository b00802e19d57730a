"""Chat messages (the OpenAI format) as the task the router sees: what varies between
requests, first.

The embedder reads about 256 word pieces (~1,000 characters) of a task and drops the rest.
Joined in order, chat requests that share a long system prompt or few-shot examples would all
read as that shared prefix and get one vector. So the task is the last user turn first (its
tail when it is long: a template puts the instance last), then a compact view of the context:
the head of the system prompt and the tail of the previous user turn, which matter only when
the last turn is short ("yes, do that").

>>> task, chars = task_of([
...     {"role": "system", "content": "You are a careful assistant. " * 100},
...     {"role": "user", "content": "What is 2 + 2?"}])
>>> task.split("\\n")[0], chars
('What is 2 + 2?', 2914)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import InvalidTaskError

__all__ = ["ROLES", "task_of"]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
#: of the last user turn, the characters kept (its tail): about what the embedder reads
LAST_TURN_CHARS = 1_000
#: of the system prompt (its head) and of the previous user turn (its tail)
CONTEXT_CHARS = 200


def _text(message: Any, index: int) -> tuple[str, str]:
    """``(role, text)`` of one message; text parts joined, other parts (images) left out."""
    if not isinstance(message, Mapping):
        raise InvalidTaskError(f"messages[{index}] must be an object with role and content")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise InvalidTaskError(f"messages[{index}].role must be one of {sorted(ROLES)}")
    if content is None or isinstance(content, str):
        return role, content or ""
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        texts = []
        for part in content:
            if not isinstance(part, Mapping):
                raise InvalidTaskError(f"messages[{index}].content parts must be objects")
            if part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise InvalidTaskError(f"messages[{index}]: a text part needs text")
                texts.append(part["text"])
        return role, "\n".join(texts)
    raise InvalidTaskError(f"messages[{index}].content must be a string or a list of parts")


def _tail(text: str, chars: int) -> str:
    """The last ``chars`` characters, from a word boundary when one is near."""
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    space = cut.find(" ", 0, 40)
    return cut[space + 1:] if space >= 0 else cut


def _head(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text[:chars]
    space = cut.rfind(" ", chars - 40)
    return cut[:space] if space >= 0 else cut


def task_of(messages: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    """The task text the router embeds for a chat request, and the characters of every
    message (for the input-token estimate). :class:`InvalidTaskError` for messages that are
    not a list of chat messages with a user turn."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) \
            or not messages:
        raise InvalidTaskError("messages must be a non-empty list of chat messages")
    turns = [_text(m, i) for i, m in enumerate(messages)]
    users = [i for i, (role, text) in enumerate(turns) if role == "user" and text.strip()]
    if not users:
        raise InvalidTaskError("messages need a user turn with text")
    last = users[-1]
    parts = [_tail(turns[last][1].strip(), LAST_TURN_CHARS)]
    system = " ".join(text for role, text in turns if role in ("system", "developer")).strip()
    earlier = [i for i in users if i < last]
    context = []
    if system:
        context.append("system: " + _head(system, CONTEXT_CHARS))
    if earlier:
        context.append("before: " + _tail(turns[earlier[-1]][1].strip(), CONTEXT_CHARS))
    if context:
        parts.append(" | ".join(context))
    return "\n".join(parts), sum(len(text) for _, text in turns)

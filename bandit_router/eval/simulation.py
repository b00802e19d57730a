"""A built-in simulated workload: task topics, models with different strengths and prices.

It needs no data files, so the demo and the core tests run anywhere. Each topic has its own
task templates and its own best model once cost counts: a cheap code model for code, a cheap
multilingual model for translation and summaries, a tiny model for small talk, the expensive
frontier model for maths and law.

>>> wl = SyntheticWorkload(seed=0)
>>> task = wl.sample_task()
>>> task.topic in TOPICS
True
>>> 0.0 <= wl.outcome(task, "frontier/large").quality <= 1.0
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core._catalog import Catalog, ModelSpec
from ..core._embedding import HashEmbedder
from ..core._objective import Objective

__all__ = ["TOPICS", "HashEmbedder", "Outcome", "SyntheticWorkload", "Task", "demo_catalog"]

TOPICS: tuple[str, ...] = ("code", "maths", "translation", "summary", "smalltalk", "law")

_MODELS: tuple[tuple[str, str, float, float, float, float], ...] = (
    # provider, model, $in/1M, $out/1M, base latency s, seconds per output token
    ("frontier", "large", 5.0, 15.0, 1.5, 0.020),
    ("midtier", "generalist", 0.5, 1.5, 0.8, 0.010),
    ("opencode", "coder", 0.2, 0.6, 0.5, 0.008),
    ("openlang", "polyglot", 0.2, 0.6, 0.5, 0.008),
    ("budget", "tiny", 0.05, 0.1, 0.2, 0.004),
)

# mean quality per topic (rows: models above; columns: TOPICS)
_QUALITY = np.array([
    [0.92, 0.92, 0.90, 0.90, 0.90, 0.92],  # frontier/large
    [0.66, 0.66, 0.72, 0.74, 0.82, 0.60],  # midtier/generalist
    [0.93, 0.55, 0.30, 0.45, 0.55, 0.35],  # opencode/coder
    [0.30, 0.40, 0.94, 0.90, 0.70, 0.45],  # openlang/polyglot
    [0.25, 0.20, 0.45, 0.55, 0.92, 0.30],  # budget/tiny
])
_OUTPUT_TOKENS = {"code": 400, "maths": 300, "translation": 40, "summary": 150,
                  "smalltalk": 60, "law": 350}

_TEMPLATES = {
    "code": ["Write a {lang} function that {job}.",
             "Fix the bug in my {lang} code: it should {job} but it crashes.",
             "How do I {job} in {lang}? Show an example.",
             "Refactor this {lang} snippet so that it can {job} faster."],
    "maths": ["Solve for x: {a}x + {b} = {c}.",
              "What is the derivative of {a}x^{b} + {c}x?",
              "Compute the integral of {a}x^{b} from 0 to {c}.",
              "Prove that the sum of the first {a} odd numbers is a perfect square."],
    "translation": ["Translate '{phrase}' to {language}.",
                    "How do you say '{phrase}' in {language}?",
                    "Please translate into {language}: {phrase}",
                    "Give me the {language} translation of the sentence '{phrase}'."],
    "summary": ["Summarize this paragraph about {subject} in two sentences.",
                "Give me a TL;DR of the following article on {subject}.",
                "Write a short summary of the meeting notes about {subject}.",
                "Condense this report on {subject} into three bullet points."],
    "smalltalk": ["Hi! How are you doing today, {name}?",
                  "Tell me a fun fact about {animal}.",
                  "What is a good name for a pet {animal}?",
                  "Good morning! Any tips for a relaxing {day}?"],
    "law": ["Is a verbal contract legally binding in {place}?",
            "Explain the difference between {term_a} and {term_b} under {place} law.",
            "What are my rights as a tenant in {place} if the landlord {issue}?",
            "Can an employer in {place} enforce a non-compete clause after {issue}?"],
}
_SLOTS: dict[str, Sequence[str]] = {
    "lang": ["Python", "JavaScript", "Rust", "Go", "Java", "C++", "TypeScript", "SQL"],
    "job": ["parses a CSV file", "reverses a linked list", "retries HTTP requests",
            "merges two sorted arrays", "validates an email address", "caches results",
            "reads a JSON config", "counts word frequencies"],
    "a": [str(i) for i in range(2, 20)], "b": [str(i) for i in range(1, 9)],
    "c": [str(i) for i in range(3, 40)],
    "phrase": ["Hello, how are you?", "Where is the train station?", "I love reading books",
               "The weather is nice today", "Thank you for your help",
               "Could I have the bill, please?", "We will meet tomorrow morning"],
    "language": ["French", "Spanish", "German", "Italian", "Japanese", "Portuguese", "Dutch"],
    "subject": ["climate policy", "quarterly earnings", "a product launch", "remote work",
                "a clinical trial", "city traffic", "renewable energy", "a software outage"],
    "name": ["Sam", "Alex", "Maria", "Li", "Noah", "Emma"],
    "animal": ["octopus", "cat", "parrot", "hedgehog", "dolphin", "rabbit", "owl"],
    "day": ["Sunday", "holiday", "rainy afternoon", "long weekend"],
    "place": ["California", "Germany", "Ontario", "France", "New York", "Australia"],
    "term_a": ["negligence", "a lease", "copyright", "a will"],
    "term_b": ["gross negligence", "a licence", "a trademark", "a trust"],
    "issue": ["refuses to return the deposit", "enters without notice",
              "I was dismissed", "I resigned", "raises the rent twice a year"],
}
_SLOT = re.compile(r"\{(\w+)\}")


def demo_catalog() -> Catalog:
    """The five simulated models, as a catalog the router can use."""
    return Catalog(ModelSpec(provider=p, model=m, input_price_per_1m=pi, output_price_per_1m=po,
                             avg_latency=lat + 200 * per_tok,
                             quality_score=float(np.mean(_QUALITY[i])),
                             context_window=32_000)
                   for i, (p, m, pi, po, lat, per_tok) in enumerate(_MODELS))


@dataclass(frozen=True, slots=True)
class Task:
    text: str
    topic: str


@dataclass(frozen=True, slots=True)
class Outcome:
    quality: float
    cost_usd: float
    latency_s: float
    output_tokens: int


class SyntheticWorkload:
    """Draws tasks and simulates what each model would have returned.

    Quality is the model's mean for the topic plus Gaussian noise (sd ``noise``), clipped to
    [0, 1]; output tokens vary around the topic's typical length; cost follows the prices;
    latency is a base plus a per-token time, with noise.
    """

    def __init__(self, *, seed: int = 0, noise: float = 0.15) -> None:
        self.rng = np.random.default_rng(seed)
        self.noise = noise
        self.catalog = demo_catalog()
        self.keys = [f"{p}/{m}" for p, m, *_ in _MODELS]

    def sample_task(self) -> Task:
        topic = TOPICS[int(self.rng.integers(len(TOPICS)))]
        templates = _TEMPLATES[topic]
        text = templates[int(self.rng.integers(len(templates)))]
        text = _SLOT.sub(lambda m: str(self.rng.choice(_SLOTS[m.group(1)])), text)
        return Task(text=text, topic=topic)

    def tasks(self, n: int) -> list[Task]:
        return [self.sample_task() for _ in range(n)]

    def mean_quality(self, topic: str, key: str) -> float:
        return float(_QUALITY[self.keys.index(key), TOPICS.index(topic)])

    def expected_cost(self, topic: str, key: str, input_tokens: int = 20) -> float:
        spec = self.catalog.get(key)
        return spec.cost_usd(input_tokens=input_tokens, output_tokens=_OUTPUT_TOKENS[topic])

    def expected_reward(self, topic: str, key: str, cost_weight: float) -> float:
        return Objective(cost_weight).reward(self.mean_quality(topic, key),
                                             self.expected_cost(topic, key))

    def best_model(self, topic: str, cost_weight: float) -> str:
        """The model with the highest expected reward on ``topic``."""
        return max(self.keys, key=lambda k: self.expected_reward(topic, k, cost_weight))

    @property
    def strongest(self) -> str:
        return self.keys[int(np.argmax(_QUALITY.mean(axis=1)))]

    @property
    def cheapest(self) -> str:
        return min(self.keys, key=lambda k: self.catalog.get(k).output_price_per_1m)

    def outcome(self, task: Task, key: str) -> Outcome:
        i = self.keys.index(key)
        quality = float(np.clip(_QUALITY[i, TOPICS.index(task.topic)]
                                + self.rng.normal(0, self.noise), 0.0, 1.0))
        tokens = max(1, int(self.rng.normal(_OUTPUT_TOKENS[task.topic],
                                            0.2 * _OUTPUT_TOKENS[task.topic])))
        spec = self.catalog.get(key)
        n_in = max(1, len(task.text) // 4)
        _, _, _, _, base, per_tok = _MODELS[i]
        latency = max(0.05, base + per_tok * tokens + float(self.rng.normal(0, 0.1)))
        return Outcome(quality=quality,
                       cost_usd=spec.cost_usd(input_tokens=n_in, output_tokens=tokens),
                       latency_s=latency, output_tokens=tokens)



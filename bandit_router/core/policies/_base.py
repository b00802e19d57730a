"""The policy interface shared by every learner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["Choice", "Features", "Policy"]

#: Namespaced features: namespace letter -> {feature name: value} or a dense vector.
Features = Mapping[str, Mapping[str, float] | npt.NDArray[np.floating]]


class Choice(NamedTuple):
    """A decision: the index of the action taken (``chosen``), its probability, the whole
    distribution, and the policy's ``memo`` of it (opaque; see :meth:`Policy.learn`)."""

    chosen: int
    probability: float
    pmf: list[float]
    memo: object = None


class Policy(ABC):
    """A contextual bandit over a variable set of actions (one per eligible model).

    ``predict(context, actions) -> (index, probability)`` samples an action from
    :meth:`pmf` with the policy's own seeded generator; ``learn(context, actions, index,
    reward, probability)`` updates it with the reward of the action taken. Rewards are
    "higher is better"; an adapter that needs costs flips the sign itself.

    :meth:`decide` also returns the policy's ``memo`` of the decision: a caller that keeps it
    and hands it to :meth:`learn` with the decision's reward saves the policy work (VW's
    adapter keeps the examples it parsed); the update is the same without it. What a memo
    holds is the policy's business, as in coba's ``predict``/``learn`` pair.
    """

    name: str = "policy"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @abstractmethod
    def pmf(self, context: Features, actions: Sequence[Features], *,
            draw: float | None = None) -> list[float]:
        """The probability the policy gives each action, in the order given. A policy whose
        distribution is itself drawn (Thompson sampling) takes its randomness from ``draw``
        (the number the decision is sampled with), so one decision has one distribution."""

    @abstractmethod
    def learn(self, context: Features, actions: Sequence[Features], index: int, reward: float,
              probability: float, *, memo: object = None) -> None:
        """Learn that action ``index``, chosen with ``probability``, earned ``reward``.
        ``memo``: what :meth:`decide` returned with this decision, if the caller kept it."""

    def _propose(self, context: Features, actions: Sequence[Features],
                 draw: float | None) -> tuple[list[float], object]:
        """The distribution of a decision, and the memo :meth:`learn` may get back."""
        return self.pmf(context, actions, draw=draw), None

    def predict(self, context: Features, actions: Sequence[Features]) -> tuple[int, float]:
        choice = self.decide(context, actions)
        return choice.chosen, choice.probability

    def decide(self, context: Features, actions: Sequence[Features], *,
               draw: float | None = None) -> Choice:
        """Sample an action: its index, its probability, the whole distribution and the
        policy's memo of the decision.

        ``draw`` in [0, 1) replaces the policy's own generator (inverse-CDF sampling): the
        router derives it from the event id, so draws never repeat across restarts or
        replicas and every decision can be reproduced.
        """
        if not actions:
            raise ValueError("a policy needs at least one action")
        if draw is not None and not 0.0 <= draw < 1.0:
            raise ValueError("draw must be in [0, 1)")
        proposed, memo = self._propose(context, actions, draw)
        pmf = np.clip(np.asarray(proposed, dtype=np.float64), 0.0, None)
        total = pmf.sum()
        pmf = pmf / total if total > 0 else np.full(len(actions), 1.0 / len(actions))
        if draw is None:
            index = int(self._rng.choice(len(actions), p=pmf))
        else:
            index = min(int(np.searchsorted(np.cumsum(pmf), draw, side="right")),
                        len(actions) - 1)
            while pmf[index] == 0.0 and index > 0:  # never land on a zero-probability action
                index -= 1
        return Choice(index, float(pmf[index]), pmf.tolist(), memo)

    def to_bytes(self) -> bytes:
        """The learned state, for a checkpoint. Stateless policies return ``b''``."""
        return b""

    def load_bytes(self, data: bytes) -> None:  # noqa: B027 - stateless policies keep this
        """Restore the state written by :meth:`to_bytes`."""

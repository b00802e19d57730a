"""The policy interface shared by every learner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Features", "Policy"]

#: Namespaced features: namespace letter -> {feature name: value} or a dense vector.
Features = Mapping[str, Mapping[str, float] | npt.NDArray[np.floating]]


class Policy(ABC):
    """A contextual bandit over a variable set of actions (one per eligible model).

    ``predict(context, actions) -> (index, probability)`` samples an action from
    :meth:`pmf` with the policy's own seeded generator; ``learn(context, actions, index,
    reward, probability)`` updates it with the reward of the action taken. Rewards are
    "higher is better"; an adapter that needs costs flips the sign itself.

    ``key`` (optional, e.g. the event id) names one context and its actions: a decision and
    the update of its reward given the same key may share work, such as formatted examples.
    Features given with a key must be the same each time it is given; without a key nothing
    is shared.
    """

    name: str = "policy"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @abstractmethod
    def pmf(self, context: Features, actions: Sequence[Features], *,
            key: Hashable | None = None) -> list[float]:
        """The probability the policy gives each action, in the order given."""

    @abstractmethod
    def learn(self, context: Features, actions: Sequence[Features], index: int, reward: float,
              probability: float, *, key: Hashable | None = None) -> None:
        """Learn that action ``index``, chosen with ``probability``, earned ``reward``."""

    def predict(self, context: Features, actions: Sequence[Features]) -> tuple[int, float]:
        index, probability, _ = self.decide(context, actions)
        return index, probability

    def decide(self, context: Features, actions: Sequence[Features], *,
               draw: float | None = None,
               key: Hashable | None = None) -> tuple[int, float, list[float]]:
        """Sample an action: its index, its probability and the whole distribution.

        ``draw`` in [0, 1) replaces the policy's own generator (inverse-CDF sampling): the
        router derives it from the event id, so draws never repeat across restarts or
        replicas and every decision can be reproduced.
        """
        if not actions:
            raise ValueError("a policy needs at least one action")
        pmf = np.asarray(self.pmf(context, actions, key=key), dtype=np.float64)
        pmf = np.clip(pmf, 0.0, None)
        total = pmf.sum()
        pmf = pmf / total if total > 0 else np.full(len(actions), 1.0 / len(actions))
        if draw is None:
            index = int(self._rng.choice(len(actions), p=pmf))
        else:
            if not 0.0 <= draw < 1.0:
                raise ValueError("draw must be in [0, 1)")
            index = min(int(np.searchsorted(np.cumsum(pmf), draw, side="right")),
                        len(actions) - 1)
            while pmf[index] == 0.0 and index > 0:  # never land on a zero-probability action
                index -= 1
        return index, float(pmf[index]), pmf.tolist()

    def to_bytes(self) -> bytes:
        """The learned state, for a checkpoint. Stateless policies return ``b''``."""
        return b""

    def load_bytes(self, data: bytes) -> None:  # noqa: B027 - stateless policies keep this
        """Restore the state written by :meth:`to_bytes`."""

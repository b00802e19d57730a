"""Contextual-bandit policies. Every one obeys :class:`Policy`; VW sits behind one adapter."""

from ._base import Choice, Features, Policy
from ._greedy import KNNGreedyPolicy
from ._random import RandomPolicy
from ._vw import VWPolicy

__all__ = ["Choice", "Features", "KNNGreedyPolicy", "Policy", "RandomPolicy", "VWPolicy"]

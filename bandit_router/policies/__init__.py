"""Contextual-bandit policies. Every one obeys :class:`Policy`; VW sits behind one adapter."""

from ._base import Features, Policy
from ._random import RandomPolicy
from ._vw import VWPolicy

__all__ = ["Features", "Policy", "RandomPolicy", "VWPolicy"]

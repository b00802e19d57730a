"""Run the docstring examples of every library module."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bandit_router

MODULES = sorted(m.name for m in pkgutil.walk_packages(bandit_router.__path__, "bandit_router."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_examples_exist() -> None:
    counted = sum(len(doctest.DocTestFinder().find(importlib.import_module(n))) for n in MODULES)
    assert counted >= 10

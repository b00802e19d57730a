"""The package's public surface: ``__all__`` is honest and importing has no side effects."""

from __future__ import annotations

import inspect
import subprocess
import sys

import bandit_router
from bandit_router.core import _catalog, _config, _constraints, _errors, _types


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(bandit_router)
              if not name.startswith("_") and not inspect.ismodule(getattr(bandit_router, name))}
    assert public == set(bandit_router.__all__) - {"__version__"}


def test_all_names_resolve() -> None:
    for name in bandit_router.__all__:
        assert getattr(bandit_router, name) is not None, name


def test_private_modules_reexport_their_public_classes() -> None:
    for module in (_catalog, _config, _errors, _types):
        for name in module.__all__:
            assert name in bandit_router.__all__, f"{module.__name__}.{name} not re-exported"
    assert "Constraints" in bandit_router.__all__ and "Constraints" in _constraints.__all__


def test_import_has_no_side_effects(tmp_path) -> None:
    code = ("import sys, bandit_router, bandit_router.eval.simulation, bandit_router.cli;"
            "assert 'fastapi' not in sys.modules, 'the library imports FastAPI';"
            "assert 'torch' not in sys.modules, 'importing loads torch';"
            "assert 'sentence_transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []  # no database or cache file written on import


def test_every_private_modules_all_names_what_it_has() -> None:
    """Each private module's ``__all__`` lists names it defines or re-exports (``_store``
    re-exports the rows ``_tables`` declares)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(bandit_router.__path__):
        module = importlib.import_module(f"bandit_router.{info.name}")
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"
    from bandit_router.core import _store, _tables

    assert set(_tables.__all__) <= set(_store.__all__)

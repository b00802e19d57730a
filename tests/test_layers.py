"""The dependency rule, layer by layer (``docs/architecture.md``):

    core  <-  spend  <-  router  <-  eval, cli  <-  feedback_api (the service)
    core's light types  <-  client

Each layer imports only the layers below it; the library never imports the service; the HTTP
client imports httpx and the core's light types only, never the router's heavy dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import bandit_router

PACKAGE = Path(bandit_router.__file__).parent
#: what each layer of the library may import of the library (besides itself)
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "spend": {"core"},
    "router": {"core", "spend"},
    "eval": {"core", "spend", "router"},
    "cli": {"core", "spend", "router", "eval"},
    "client": {"core"},
    "__init__": {"core", "spend", "router", "eval"},  # re-exports, on first use
}
#: the core modules the client may import (each of them light)
CLIENT_ALLOWED = {"_catalog", "_config", "_constraints", "_deployment", "_errors", "_namespaces",
                  "_results", "_types"}


def _runtime_imports(path: Path, *, typing_too: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports at run time (``TYPE_CHECKING``
    blocks left out unless ``typing_too``), relative imports resolved against the package."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = here[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
                    and not typing_too):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = ".".join(package[:len(package) - child.level + 1])
                    module = f"{base}.{child.module}" if child.module else base
                    if child.module is None:  # from . import x
                        found.update(f"{base}.{alias.name}" for alias in child.names)
                        continue
                else:
                    module = child.module or ""
                found.add(module)
            visit(child)

    visit(tree)
    return found


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p
            for p in PACKAGE.rglob("*.py")}


def _layer(name: str) -> str | None:
    """The layer of bandit_router that the module ``name`` is in (None: not the library)."""
    parts = name.split(".")
    if parts[0] != "bandit_router":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_is_in_a_layer() -> None:
    assert {_layer(mod) for mod in _modules()} == set(LAYERS)


def test_the_library_never_imports_the_service() -> None:
    offenders = {mod: sorted(i for i in _runtime_imports(path)
                             if i.split(".")[0] == "feedback_api")
                 for mod, path in _modules().items()}
    assert {m: i for m, i in offenders.items() if i} == {}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    offenders = {}
    for mod, path in _modules().items():
        if _layer(mod) != layer:
            continue
        bad = sorted(i for i in _runtime_imports(path, typing_too=True)
                     if _layer(i) not in (None, layer, *LAYERS[layer]))
        if bad:
            offenders[mod] = bad
    assert offenders == {}


def test_the_client_imports_only_light_modules() -> None:
    def light(path: Path) -> set[str]:
        found = set()
        for i in _runtime_imports(path):
            if i.startswith("bandit_router.core."):
                found.add(i.split(".")[2])
            elif i.startswith("bandit_router") and i not in ("bandit_router", "bandit_router.core"):
                raise AssertionError(f"{path.name} imports {i}")
        return found

    own = light(PACKAGE / "client.py")
    assert own <= CLIENT_ALLOWED, own - CLIENT_ALLOWED
    for name in own:  # and those import nothing heavier
        nested = light(PACKAGE / "core" / f"{name}.py")
        assert nested <= CLIENT_ALLOWED, (name, nested - CLIENT_ALLOWED)


def test_importing_the_client_loads_no_router_dependency() -> None:
    code = ("import sys, bandit_router.client; "
            "print(sorted(m for m in ('vowpalwabbit', 'faiss', 'sqlalchemy', 'numpy', 'torch', "
            "'sentence_transformers', 'fastapi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_no_module_imports_itself_round_a_circle() -> None:
    """Not even for type annotations: a circle means two modules that know each other."""
    modules = _modules()
    graph = {mod: {i for i in _runtime_imports(path, typing_too=True) if i in modules}
             for mod, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for nxt in sorted(graph[mod]):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*path[path.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)

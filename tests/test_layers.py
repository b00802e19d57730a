"""The dependency rule: the library never imports the service; the core (router, policies,
memory, store, spend) never imports the evaluation modules; the HTTP client imports httpx and
the shared types only, never the router's heavy dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bandit_router

PACKAGE = Path(bandit_router.__file__).parent
#: evaluation and tooling: built on the core, never imported by it
EVALUATION = {"baselines", "cli", "datasets", "evaluation", "experiments", "plots", "protocol",
              "replay", "simulation"}
#: what the client may import of the library (each of them light)
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


def _own(name: str) -> str | None:
    """The first-level module of bandit_router that ``name`` is, or is in."""
    parts = name.split(".")
    return parts[1] if parts[0] == "bandit_router" and len(parts) > 1 else None


def test_the_library_never_imports_the_service() -> None:
    offenders = {mod: sorted(i for i in _runtime_imports(path)
                             if i.split(".")[0] == "feedback_api")
                 for mod, path in _modules().items()}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_core_never_imports_evaluation() -> None:
    offenders = {}
    for mod, path in _modules().items():
        if _own(mod) in EVALUATION or _own(mod) == "client" or mod == "bandit_router":
            continue
        bad = sorted(i for i in _runtime_imports(path)
                     if _own(i) in EVALUATION or _own(i) == "client")
        if bad:
            offenders[mod] = bad
    assert offenders == {}


def test_the_client_imports_only_light_modules() -> None:
    imports = _runtime_imports(PACKAGE / "client.py")
    own = {_own(i) for i in imports if i.startswith("bandit_router")}
    assert own <= CLIENT_ALLOWED, own - CLIENT_ALLOWED
    for name in own:  # and those import nothing heavier
        nested = {_own(i) for i in _runtime_imports(PACKAGE / f"{name}.py")
                  if i.startswith("bandit_router")}
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

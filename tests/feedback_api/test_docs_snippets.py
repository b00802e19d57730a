"""Every ```python snippet of README.md and docs/*.md runs as written (here because some of
them talk to the real service).

Each runs in a fresh namespace that holds only what the prose around it assumes: ``router``
(a library router, real MiniLM, with some rewarded traffic in its log) and ``api_key`` (a
client key of the running service, whose address replaces ``http://127.0.0.1:8000``). The
working directory is a temporary folder, so ``Router()`` writes its SQLite file there. A
snippet that calls the OpenAI-compatible gateway (``chat.completions``) talks to a server
whose ``openai/gpt-4o-mini`` has a deployment on an upstream process that answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bandit_router import OnnxEmbedder, Router

from .conftest import Server, make_server, running_upstreams

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def _snippets() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for k, match in enumerate(FENCE.finditer(path.read_text())):
            found.append((f"{path.relative_to(ROOT)}#{k + 1}", match.group(1)))
    return found


SNIPPETS = _snippets()


def test_the_docs_have_snippets() -> None:
    assert len(SNIPPETS) >= 7
    assert {name.split("#")[0] for name, _ in SNIPPETS} >= {"README.md", "docs/service.md"}


@pytest.fixture
def given_router(tmp_path: Path, minilm: OnnxEmbedder) -> Iterator[Router]:
    router = Router(database_url=f"sqlite:///{tmp_path / 'given.db'}", embedder=minilm)
    tasks = ["Translate 'Hello' to French", "Summarise this paragraph about remote work.",
             "Write a Python function that reverses a list.", "What is 17 * 23?"]
    for i in range(40):
        d = router.select(tasks[i % len(tasks)])
        router.reward(d.event_id, quality=0.5 + 0.1 * (i % 5), cost_usd=d.estimated_cost_usd,
                      latency_s=1.0)
    yield router
    router.close()


@pytest.fixture(scope="module")
def gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real service (MiniLM, the bundled catalog) with one model callable upstream."""
    tmp = tmp_path_factory.mktemp("snippet-gateway")
    with running_upstreams("ok") as (upstream,):
        balancing = tmp / "balancing.json"
        balancing.write_text(json.dumps({"deployments": [
            {"id": "mini", "model": "openai/gpt-4o-mini", "provider": "openai",
             "api_base": f"{upstream}/v1"}]}))
        srv = make_server(tmp, BANDIT_ROUTER_LOAD_BALANCING_FILE=str(balancing))
        srv.start()
        try:
            yield srv
        finally:
            srv.stop()


@pytest.mark.slow
@pytest.mark.parametrize("name, code", SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_snippet_runs(name: str, code: str, server: Server, given_router: Router,
                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      request: pytest.FixtureRequest) -> None:
    if "chat.completions" in code:
        server = request.getfixturevalue("gateway_server")
    monkeypatch.chdir(tmp_path)
    namespace = {"router": given_router, "api_key": server.client_key,
                 "__name__": "__snippet__"}
    made: list[Router] = []
    real_init = Router.__init__

    def tracked(self: Router, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(Router, "__init__", tracked)
    try:
        exec(compile(code.replace("http://127.0.0.1:8000", server.url), name, "exec"),
             namespace)
    finally:
        for router in made:
            router.close()

"""LiteLLM price tables: reading, matching to the catalog, applying to a real Router, and the
file watcher that reapplies them when the file changes."""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bandit_router import Catalog, CatalogError, ModelSpec, Router, RouterConfig
from bandit_router.eval.simulation import HashEmbedder, SyntheticWorkload, demo_catalog
from bandit_router.spend._prices import (
    LiteLLMPrice,
    PriceFileWatcher,
    PriceImport,
    apply_price_file,
    match_prices,
    read_litellm_prices,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("BANDIT_ROUTER_DATA", ROOT.parent / "shared" / "data"))
REAL_FILE = DATA / "prices" / "litellm_1.74.0_model_prices_and_context_window.json.gz"
needs_real_file = pytest.mark.skipif(not REAL_FILE.exists(),
                                     reason="shared LiteLLM price table not present "
                                            "(BANDIT_ROUTER_DATA)")


def entry(provider: str, input_per_token: Any, output_per_token: Any, **extra: Any
          ) -> dict[str, Any]:
    return {"litellm_provider": provider, "mode": "chat", "input_cost_per_token": input_per_token,
            "output_cost_per_token": output_per_token, **extra}


SAMPLE: dict[str, Any] = {
    "sample_spec": {"max_tokens": "LEGACY parameter", "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0, "litellm_provider": "one of ...",
                    "mode": "one of: chat, embedding, ..."},
    "gpt-4o": entry("openai", 2.5e-06, 1e-05, max_input_tokens=128000, max_output_tokens=16384),
    "gpt-4.1-mini": entry("openai", 4e-07, 1.6e-06),
    "groq/llama3-70b-8192": entry("groq", 5.9e-07, 7.9e-07, max_input_tokens=8192.0),
    "gemini/gemini-1.5-pro": entry("gemini", 1.25e-06, 5e-06),
    "gemini-1.5-pro": entry("vertex_ai-language-models", 1.25e-06, 5e-06),
    "vertex_ai/claude-3-opus": entry("vertex_ai-anthropic_models", 1.5e-05, 7.5e-05),
    "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
                               "input_cost_per_token": 2e-08, "output_cost_per_token": 0},
    "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation",
                 "output_cost_per_pixel": 0.0},
    "string-costs": entry("openai", "0.000001", "0.000002"),
    "null-costs": entry("openai", None, 1e-06),
    "bool-costs": entry("openai", True, 1e-06),
    "negative-costs": entry("openai", -1e-06, 1e-06),
    "infinite-costs": entry("openai", float("inf"), 1e-06),
    "nan-costs": entry("openai", float("nan"), 1e-06),
    "not-an-object": [1, 2, 3],
}
USABLE = {"gpt-4o", "gpt-4.1-mini", "groq/llama3-70b-8192", "gemini/gemini-1.5-pro",
          "gemini-1.5-pro", "vertex_ai/claude-3-opus", "text-embedding-3-small"}


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(data))  # allow_nan: LiteLLM's parser (Python's) reads NaN too
    return path


def spec(provider: str, model: str, price_in: float = 1.0, price_out: float = 2.0,
         **kw: Any) -> ModelSpec:
    return ModelSpec(provider=provider, model=model, input_price_per_1m=price_in,
                     output_price_per_1m=price_out, **kw)


# -- reading -----------------------------------------------------------------------------------
def test_reads_json_and_gzip_alike(tmp_path: Path) -> None:
    plain = read_litellm_prices(write_json(tmp_path / "prices.json", SAMPLE))
    packed = tmp_path / "prices.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(SAMPLE).encode()))
    assert read_litellm_prices(packed) == plain
    assert read_litellm_prices(str(packed)) == plain
    assert set(plain) == USABLE
    assert plain["gpt-4o"] == LiteLLMPrice(
        key="gpt-4o", provider="openai", model="gpt-4o", input_price_per_1m=2.5,
        output_price_per_1m=10.0, max_input_tokens=128000, max_output_tokens=16384, mode="chat")
    # per-token x 1e6 is rounded: 4e-07 * 1e6 is 0.39999999999999997 in floating point
    assert (plain["gpt-4.1-mini"].input_price_per_1m,
            plain["gpt-4.1-mini"].output_price_per_1m) == (0.4, 1.6)
    groq = plain["groq/llama3-70b-8192"]
    assert (groq.provider, groq.model, groq.max_input_tokens, groq.max_output_tokens) == (
        "groq", "llama3-70b-8192", 8192, None)
    assert plain["vertex_ai/claude-3-opus"].model == "claude-3-opus"  # family prefix stripped
    assert plain["text-embedding-3-small"].mode == "embedding"
    assert plain["text-embedding-3-small"].output_price_per_1m == 0.0


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(gzip.compress(json.dumps(SAMPLE).encode()))
    assert set(read_litellm_prices(path)) == USABLE


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.json", None, "cannot read"),
    ("broken.json", b'{"gpt-4o": {"input_cost_per_token": 1e-06,', "does not parse"),
    ("latin1.json", b'{"caf\xe9": 1}', "does not parse"),
    # (mtime=0: the same bytes, so the same test id, in every pytest-xdist worker)
    ("truncated.json.gz", gzip.compress(json.dumps(SAMPLE).encode(), mtime=0)[:40],
     "does not parse"),
    ("list.json", b"[1, 2]", "top level must be a JSON object"),
    ("catalog.json", json.dumps({"models": [{"provider": "a", "model": "b"}]}).encode(),
     "no entry with numeric"),
    ("empty.json", b"{}", "no entry with numeric"),
])
def test_bad_files_raise_catalog_error(tmp_path: Path, name: str, content: bytes | None,
                                       message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CatalogError, match=message) as info:
        read_litellm_prices(path)
    assert name in str(info.value)
    assert isinstance(info.value, ValueError)  # CatalogError is an InvalidInputError


# -- matching ----------------------------------------------------------------------------------
def test_match_rules(tmp_path: Path) -> None:
    prices = read_litellm_prices(write_json(tmp_path / "p.json", SAMPLE))
    catalog = Catalog([
        spec("openai", "gpt-4o"),  # bare key, litellm_provider openai
        spec("groq", "llama3-70b-8192"),  # prefixed key
        spec("gemini", "gemini-1.5-pro"),  # prefixed key wins over the bare vertex one
        spec("google", "gemini-1.5-pro"),  # equivalent provider: gemini/gemini-1.5-pro
        spec("vertex_ai", "claude-3-opus"),  # prefixed key equal to provider/model
        spec("groq", "gpt-4o"),  # bare key of another provider: no match
        spec("openai", "gpt-5"),  # absent
        spec("openai", "string-costs"),  # present but skipped
    ])
    match = match_prices(catalog, prices)
    assert match.prices == {
        "openai/gpt-4o": (2.5, 10.0),
        "groq/llama3-70b-8192": (0.59, 0.79),
        "gemini/gemini-1.5-pro": (1.25, 5.0),
        "google/gemini-1.5-pro": (1.25, 5.0),
        "vertex_ai/claude-3-opus": (15.0, 75.0),
    }
    assert match.sources == {
        "openai/gpt-4o": "gpt-4o", "groq/llama3-70b-8192": "groq/llama3-70b-8192",
        "gemini/gemini-1.5-pro": "gemini/gemini-1.5-pro",
        "google/gemini-1.5-pro": "gemini/gemini-1.5-pro",
        "vertex_ai/claude-3-opus": "vertex_ai/claude-3-opus"}
    assert match.unmatched == ("groq/gpt-4o", "openai/gpt-5", "openai/string-costs")


def test_bare_key_of_an_equivalent_provider(tmp_path: Path) -> None:
    prices = read_litellm_prices(write_json(tmp_path / "p.json", {
        "gemini-2.0-pro": entry("vertex_ai-language-models", 1e-06, 4e-06)}))
    match = match_prices(Catalog([spec("google", "gemini-2.0-pro"),
                                  spec("gemini", "gemini-2.0-pro"),
                                  spec("openai", "gemini-2.0-pro")]), prices)
    assert match.prices == {"google/gemini-2.0-pro": (1.0, 4.0),
                            "gemini/gemini-2.0-pro": (1.0, 4.0)}
    assert match.unmatched == ("openai/gemini-2.0-pro",)


def test_aliases_come_first_and_must_exist(tmp_path: Path) -> None:
    prices = read_litellm_prices(write_json(tmp_path / "p.json", SAMPLE))
    catalog = Catalog([spec("openai", "gpt-4o"), spec("groq", "llama-3-70b"),
                       spec("acme", "big")])
    aliases = {"openai/gpt-4o": "gpt-4.1-mini", "groq/llama-3-70b": "groq/llama3-70b-8192"}
    match = match_prices(catalog, prices, aliases=aliases)
    assert match.prices == {"openai/gpt-4o": (0.4, 1.6), "groq/llama-3-70b": (0.59, 0.79)}
    assert match.unmatched == ("acme/big",)
    with pytest.raises(CatalogError, match="no usable entry 'gpt-9'"):
        match_prices(catalog, prices, aliases={"acme/big": "gpt-9"})
    with pytest.raises(CatalogError, match="no usable entry 'string-costs'"):
        match_prices(catalog, prices, aliases={"acme/big": "string-costs"})
    with pytest.raises(CatalogError, match="not in the catalog"):
        match_prices(catalog, prices, aliases={"acme/small": "gpt-4o"})


# -- applying to a router ----------------------------------------------------------------------
def demo_prices(**overrides: tuple[float, float]) -> dict[str, Any]:
    """A LiteLLM-format file for the demo catalog, at its prices unless overridden (per 1M)."""
    out: dict[str, Any] = {"sample_spec": SAMPLE["sample_spec"]}
    for s in demo_catalog():
        price_in, price_out = overrides.get(s.model, (s.input_price_per_1m,
                                                      s.output_price_per_1m))
        if s.model == "tiny":
            continue  # the file does not know budget/tiny
        key = s.key if s.provider != "midtier" else s.model  # one bare key
        out[key] = entry(s.provider, price_in / 1e6, price_out / 1e6)
    return out


class CountingRouter:
    """A real router that counts its update_pricing calls."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.calls: list[tuple[str, dict[str, dict[str, float]]]] = []

    @property
    def catalog(self) -> Catalog:
        return self.router.catalog

    def update_pricing(self, provider: str, prices: Mapping[str, Mapping[str, float]]) -> None:
        self.calls.append((provider, {m: dict(p) for m, p in prices.items()}))
        self.router.update_pricing(provider, prices)


@pytest.fixture
def sqlite_file_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'router.db'}"


@pytest.fixture
def make_router(sqlite_file_url: str) -> Iterator[Callable[..., Router]]:
    made: list[Router] = []

    def factory(**kw: Any) -> Router:
        kw.setdefault("database_url", sqlite_file_url)
        kw.setdefault("catalog", demo_catalog())
        router = Router(embedder=HashEmbedder(), config=RouterConfig(cost_weight=50.0), **kw)
        made.append(router)
        return router

    yield factory
    for router in made:
        router.close()


def test_apply_price_file_updates_and_persists(tmp_path: Path,
                                               make_router: Callable[..., Router]) -> None:
    router = CountingRouter(make_router())
    path = write_json(tmp_path / "prices.json",
                      demo_prices(generalist=(0.75, 2.25), polyglot=(0.25, 0.8)))
    result = apply_price_file(router, path)
    assert result == PriceImport(
        changed={"midtier/generalist": (0.75, 2.25), "openlang/polyglot": (0.25, 0.8)},
        unchanged=("frontier/large", "opencode/coder"), unmatched=("budget/tiny",))
    assert sorted(router.calls) == [  # one call per provider
        ("midtier", {"generalist": {"input_price_per_1m": 0.75, "output_price_per_1m": 2.25}}),
        ("openlang", {"polyglot": {"input_price_per_1m": 0.25, "output_price_per_1m": 0.8}})]
    spec_ = router.catalog.find("midtier", "generalist")
    assert (spec_.input_price_per_1m, spec_.output_price_per_1m) == (0.75, 2.25)
    assert router.catalog.find("budget", "tiny").output_price_per_1m == 0.1  # untouched

    again = apply_price_file(router, path)  # nothing left to change: no update at all
    assert again.changed == {} and len(router.calls) == 2
    assert set(again.unchanged) == {"frontier/large", "opencode/coder", "midtier/generalist",
                                    "openlang/polyglot"}

    router.router.close()
    reopened = make_router()  # the same SQLite file, the demo catalog's original prices
    polyglot = reopened.catalog.find("openlang", "polyglot")
    assert (polyglot.input_price_per_1m, polyglot.output_price_per_1m) == (0.25, 0.8)
    assert reopened.catalog.find("midtier", "generalist").output_price_per_1m == 2.25


def test_apply_price_file_is_all_or_nothing_on_a_refused_price(
        tmp_path: Path, make_router: Callable[..., Router]) -> None:
    router = CountingRouter(make_router())
    path = write_json(tmp_path / "prices.json",
                      demo_prices(generalist=(0.75, 2.25), polyglot=(0.25, 500_000.0)))
    with pytest.raises(CatalogError, match="openlang/polyglot"):
        apply_price_file(router, path)
    assert router.calls == []
    assert router.catalog.find("midtier", "generalist").input_price_per_1m == 0.5


def test_apply_price_file_with_aliases(tmp_path: Path,
                                       make_router: Callable[..., Router]) -> None:
    router = make_router()
    data = demo_prices()
    data["tiny-v2"] = entry("budget", 1e-07, 2e-07)
    path = write_json(tmp_path / "prices.json", data)
    result = apply_price_file(router, path, aliases={"budget/tiny": "tiny-v2"})
    assert result.changed == {"budget/tiny": (0.1, 0.2)} and result.unmatched == ()
    with pytest.raises(CatalogError):
        apply_price_file(router, path, aliases={"budget/tiny": "tiny-v3"})


def test_a_price_change_in_the_file_shifts_traffic_at_the_next_decisions(
        tmp_path: Path) -> None:
    """Two models at the same price, one a little better: once the router has settled on it,
    making it 100x dearer in the file moves the next decisions to the other one, without a
    reward in between (the price is a decision feature)."""
    catalog = Catalog([spec("alpha", "one", 3.0, 12.0, avg_latency=2.0, quality_score=0.8),
                       spec("beta", "two", 3.0, 12.0, avg_latency=2.0, quality_score=0.8)])
    router = Router(database_url=f"sqlite:///{tmp_path / 'shift.db'}", catalog=catalog,
                    embedder=HashEmbedder(), config=RouterConfig(cost_weight=50.0))
    path = tmp_path / "prices.json"

    def write(dearer: str | None) -> None:
        write_json(path, {s.key: entry(s.provider, (300e-6 if s.key == dearer else 3e-6),
                                       (1200e-6 if s.key == dearer else 12e-6))
                          for s in catalog})

    write(None)
    watcher = PriceFileWatcher(path, lambda: apply_price_file(router, path), fire_initial=True)
    assert watcher.check()  # the file matches the catalog: applied, nothing changed
    workload = SyntheticWorkload(seed=5)
    for i in range(300):  # alpha a little better: settles on it
        d = router.select(workload.sample_task().text, event_id=f"train-{i}")
        router.reward(d.event_id, quality=0.9 if d.provider == "alpha" else 0.7,
                      output_tokens=300)
    tasks = [t.text for t in SyntheticWorkload(seed=3).tasks(60)]

    def shares(tag: str) -> dict[str, float]:
        picks = [router.select(text, event_id=f"{tag}-{i}") for i, text in enumerate(tasks)]
        return {key: sum(f"{d.provider}/{d.model}" == key for d in picks) / len(picks)
                for key in catalog.model_keys()}

    before = shares("before")
    leader, other = "alpha/one", "beta/two"
    assert before[leader] >= 0.7
    learned = router.policy_version

    write(leader)
    assert watcher.check() is True
    assert router.catalog.get(leader).input_price_per_1m == 300.0
    after = shares("after")
    assert router.policy_version == learned  # no reward, nothing relearned
    assert after[other] >= 0.9 and after[other] > before[other] + 0.5
    router.close()


# -- the watcher -------------------------------------------------------------------------------
class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.calls = 0
        self.fail = fail
        self.fired = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise CatalogError(f"failure {self.calls}")
        self.fired.set()


def test_watcher_fires_once_per_content_change(tmp_path: Path) -> None:
    path = write_json(tmp_path / "p.json", {"a": 1})
    on_change = Recorder()
    watcher = PriceFileWatcher(path, on_change)
    assert watcher.check() is False and on_change.calls == 0  # first check: the baseline
    assert watcher.check() is False
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touch
    assert watcher.check() is False
    write_json(path, {"a": 1})  # rewritten, same bytes
    assert watcher.check() is False and on_change.calls == 0

    write_json(path, {"a": 2})  # same size, other bytes, probably the same mtime tick
    assert watcher.check() is True and on_change.calls == 1
    assert watcher.check() is False and watcher.check() is False and on_change.calls == 1
    write_json(path, {"a": 3})
    assert watcher.check() is True and on_change.calls == 2


def test_watcher_fire_initial(tmp_path: Path) -> None:
    path = write_json(tmp_path / "p.json", {"a": 1})
    on_change = Recorder()
    watcher = PriceFileWatcher(path, on_change, fire_initial=True)
    assert watcher.check() is True and on_change.calls == 1
    assert watcher.check() is False and on_change.calls == 1


def test_watcher_logs_a_failed_change_and_retries(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = write_json(tmp_path / "p.json", {"a": 1})
    on_change = Recorder(fail=2)
    watcher = PriceFileWatcher(path, on_change)
    watcher.check()
    path.write_text('{"a": ')  # half written
    with caplog.at_level(logging.WARNING, logger="bandit_router"):
        assert watcher.check() is False  # logged, not raised
        assert isinstance(watcher.last_error, CatalogError)
        assert watcher.check() is False  # the same content is retried, not taken as applied
    assert on_change.calls == 2
    assert [r.name for r in caplog.records] == ["bandit_router", "bandit_router"]
    assert caplog.records[0].exc_info is not None  # the traceback once, then a short line
    assert "still fails" in caplog.records[1].getMessage()
    write_json(path, {"a": 2})
    assert watcher.check() is True and on_change.calls == 3 and watcher.last_error is None
    assert watcher.check() is False


def test_watcher_with_apply_price_file_and_a_broken_file(
        tmp_path: Path, make_router: Callable[..., Router],
        caplog: pytest.LogCaptureFixture) -> None:
    router = make_router()
    path = write_json(tmp_path / "prices.json", demo_prices())
    watcher = PriceFileWatcher(path, lambda: apply_price_file(router, path))
    watcher.check()
    path.write_text('{"frontier/large": {"input_cost_per_token": 1e-0')
    with caplog.at_level(logging.ERROR, logger="bandit_router"):
        assert watcher.check() is False
    assert "does not parse" in caplog.text
    write_json(path, demo_prices(large=(10.0, 30.0)))
    assert watcher.check() is True
    assert router.catalog.find("frontier", "large").input_price_per_1m == 10.0


def test_watcher_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "later.json"
    on_change = Recorder()
    watcher = PriceFileWatcher(path, on_change)
    with caplog.at_level(logging.WARNING, logger="bandit_router"):
        assert watcher.check() is False and watcher.check() is False
    assert len(caplog.records) == 1 and "cannot be read" in caplog.text  # once per outage
    write_json(path, {"a": 1})
    assert watcher.check() is True and on_change.calls == 1  # appearing is a change
    path.unlink()
    assert watcher.check() is False
    write_json(path, {"a": 1})  # back with the content already applied
    assert watcher.check() is False and on_change.calls == 1


def test_watcher_rejects_a_bad_interval(tmp_path: Path) -> None:
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="interval_s"):
            PriceFileWatcher(tmp_path / "p.json", Recorder(), interval_s=bad)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_watcher_thread_starts_and_stops(tmp_path: Path) -> None:
    path = write_json(tmp_path / "p.json", {"a": 1})
    on_change = Recorder(fail=1)  # the first attempt fails: the thread goes on and retries
    watcher = PriceFileWatcher(path, on_change, interval_s=0.02)
    watcher.start()
    try:
        thread = watcher._thread
        assert watcher.running and thread is not None and thread.daemon
        watcher.start()  # already running: no second thread
        assert watcher._thread is thread
        write_json(path, {"a": 2})
        assert on_change.fired.wait(10.0) and on_change.calls == 2
    finally:
        watcher.stop()
    assert not watcher.running and not thread.is_alive()
    calls = on_change.calls
    write_json(path, {"a": 3})
    time.sleep(0.1)
    assert on_change.calls == calls  # stopped: nothing runs


def test_watcher_as_context_manager(tmp_path: Path) -> None:
    path = write_json(tmp_path / "p.json", {"a": 1})
    on_change = Recorder()
    with PriceFileWatcher(path, on_change, interval_s=0.02) as watcher:
        assert watcher.running
        path.unlink()  # missing for a while: logged by the thread, not raised
        time.sleep(0.1)
        write_json(path, {"a": 22})
        assert wait_for(lambda: on_change.calls == 1)
    assert not watcher.running


# -- the real LiteLLM table --------------------------------------------------------------------
@needs_real_file
def test_real_litellm_table_prices_the_whole_default_catalog() -> None:
    prices = read_litellm_prices(REAL_FILE)
    raw = json.loads(gzip.decompress(REAL_FILE.read_bytes()))
    assert len(raw) == 1141
    assert len(prices) == 951 and "sample_spec" not in prices  # 189 lack numeric token costs
    catalog = Catalog.default()
    match = match_prices(catalog, prices)
    assert match.unmatched == ()
    assert len(match.prices) == len(catalog) == 15
    bundled = {s.key: (s.input_price_per_1m, s.output_price_per_1m) for s in catalog}
    assert match.prices == bundled  # the bundled catalog is LiteLLM 1.74.0's prices, exactly
    assert match.sources["openai/gpt-4o"] == "gpt-4o"
    assert match.sources["gemini/gemini-2.5-pro"] == "gemini/gemini-2.5-pro"
    assert match.sources["anthropic/claude-sonnet-4-20250514"] == "claude-sonnet-4-20250514"


@needs_real_file
def test_real_litellm_table_changes_nothing_on_the_default_catalog() -> None:
    router = Router(database_url="sqlite://", catalog=Catalog.default(),
                    embedder=HashEmbedder())
    try:
        result = apply_price_file(router, REAL_FILE)
    finally:
        router.close()
    assert result.changed == {} and result.unmatched == () and len(result.unchanged) == 15

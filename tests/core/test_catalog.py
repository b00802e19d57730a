from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bandit_router import Catalog, CatalogError, ModelSpec, UnknownModelError


def spec(**kw: object) -> ModelSpec:
    base: dict[str, object] = dict(provider="p", model="m", input_price_per_1m=1.0,
                                   output_price_per_1m=2.0)
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


def test_default_catalog_is_sane() -> None:
    cat = Catalog.default()
    assert len(cat) >= 10
    assert len(set(cat.model_keys())) == len(cat)
    assert {"openai", "anthropic", "gemini"} <= set(cat.providers())
    for s in cat:
        assert s.output_price_per_1m >= s.input_price_per_1m >= 0
        assert 0 < s.quality_score <= 1


def test_cost_is_tokens_times_price() -> None:
    s = spec(input_price_per_1m=2.5, output_price_per_1m=10.0)
    assert s.cost_usd(input_tokens=1000, output_tokens=500) == pytest.approx(0.0075)
    # many calls at once: each the same as alone (the replay's reference bandit uses it)
    many = s.cost_usd(input_tokens=np.array([1000.0, 0.0, 37.0]), output_tokens=500)
    assert many.tolist() == [s.cost_usd(input_tokens=n, output_tokens=500)
                             for n in (1000.0, 0.0, 37.0)]


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_from_file_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cat{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(Catalog.default().to_dict()))
    else:
        path.write_text('[[models]]\nprovider = "acme"\nmodel = "m1"\ninput_price_per_1m = 0.5\n'
                        'output_price_per_1m = 1.5\nquality_score = 0.7\ncontext_window = 8000\n')
    cat = Catalog.from_file(path)
    if suffix == ".json":
        assert cat.to_dict() == Catalog.default().to_dict()
    else:
        assert cat.find("acme", "m1").context_window == 8000


@pytest.mark.parametrize("content, match", [
    ("{not json", "does not parse"),
    ('{"models": [{"provider": "p", "model": "m"}]}', "bad catalog entry"),
    ('{"models": [{"provider": "p", "model": "m", "input_price_per_1m": 1, '
     '"output_price_per_1m": 1, "colour": "red"}]}', "unknown catalog fields"),
    ('{"models": [{"provider": "p", "model": "m", "input_price_per_1m": -1, '
     '"output_price_per_1m": 1}]}', "input_price_per_1m"),
    ('{"models": [{"provider": "p", "model": "m", "input_price_per_1m": 1, '
     '"output_price_per_1m": 1, "quality_score": 2}]}', "quality_score"),
    ('{"models": []}', "at least one"),
    ('{"items": []}', "'models' list"),
])
def test_bad_files_raise_catalog_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CatalogError, match=match):
        Catalog.from_file(path)


def test_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        Catalog.from_file(tmp_path / "nope.json")


def test_duplicates_are_refused() -> None:
    with pytest.raises(CatalogError, match="duplicate"):
        Catalog([spec(), spec()])


def test_update_price() -> None:
    cat = Catalog([spec()])
    new = cat.update_price("p", "m", input_price_per_1m=3.0)
    assert new.input_price_per_1m == 3.0 and new.output_price_per_1m == 2.0
    assert cat.get("p/m") is new
    with pytest.raises(CatalogError):
        cat.update_price("p", "m", input_price_per_1m=float("nan"))
    with pytest.raises(CatalogError):
        cat.update_price("p", "m")
    with pytest.raises(UnknownModelError):
        cat.update_price("p", "other", input_price_per_1m=1.0)
    assert cat.get("p/m").input_price_per_1m == 3.0


def test_a_spec_round_trips_through_to_dict_and_asdict() -> None:
    """``key`` is derived, not given: ``to_dict()`` leaves it out, and ``from_dict`` takes an
    ``asdict()`` (which has it) as long as it matches provider and model."""
    from dataclasses import asdict, replace

    spec = ModelSpec(provider="p", model="m", input_price_per_1m=1.0, output_price_per_1m=2.0)
    assert "key" not in spec.to_dict() and spec.key == "p/m"
    assert ModelSpec.from_dict(spec.to_dict()) == ModelSpec.from_dict(asdict(spec)) == spec
    assert replace(spec, model="n").key == "p/n"
    with pytest.raises(CatalogError, match="does not match"):
        ModelSpec.from_dict({**spec.to_dict(), "key": "p/other"})

from __future__ import annotations

import pytest

import bandit_router as br


@pytest.mark.parametrize("name", [n for n in br.__all__ if n.endswith("Error")])
def test_every_error_is_in_the_tree(name: str) -> None:
    assert issubclass(getattr(br, name), br.BanditRouterError)


def test_input_errors_are_value_errors() -> None:
    for cls in (br.InvalidTaskError, br.InvalidRewardError, br.InvalidConstraintsError,
                br.CatalogError):
        assert issubclass(cls, br.InvalidInputError) and issubclass(cls, ValueError)


def test_no_eligible_model_lists_every_reason() -> None:
    err = br.NoEligibleModelError({"a/x": "too slow", "b/y": "too dear"})
    assert err.reasons == {"a/x": "too slow", "b/y": "too dear"}
    assert "a/x: too slow" in str(err) and "b/y: too dear" in str(err)


def test_docstring_draws_the_tree() -> None:
    from bandit_router.core import _errors

    doc = _errors.__doc__ or ""
    for name in [n for n in br.__all__ if n.endswith("Error")]:
        assert name in doc, f"{name} missing from the drawn exception tree"

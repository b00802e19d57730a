"""Fuzz the OpenAPI schema against a real server: no 5xx, responses match the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Server, make_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("fuzz"), BANDIT_ROUTER_EMBEDDER="hash")
    srv.start()
    yield srv
    srv.stop()


def test_api_fuzz(fuzz_server: Server) -> None:
    """Every operation, with generated valid and invalid inputs (schemathesis's pytest plugin
    does not run on pytest 9, so hypothesis drives its strategies directly)."""
    from hypothesis import given

    api = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_server.admin_key}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 9
    calls: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=checks)
            calls.append(case.operation.label)

        fuzz()
    assert len(calls) >= 10 * len(operations)
    assert {c.split()[0] for c in calls} >= {"GET", "POST", "PUT"}

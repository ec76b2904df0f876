"""Schemathesis over the server's OpenAPI document: generated requests to every documented
route (the changes feed excepted: it never ends) must never get a 500 from the real server."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

from api_helpers import fill, serve  # noqa: E402

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

TOKEN = "schema-token"
# ~40 operations x 6 generated requests: about 2 minutes on the shared 2-core machine.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    d = tmp_path_factory.mktemp("schema")
    fill(d, 6).close()
    with serve(d, token=TOKEN) as server:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        yield schema.exclude(path_regex=r"/events$")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_makes_the_server_fail(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error],
                           timeout=30)

"""Property-based requests from the engine's own OpenAPI schema (schemathesis): no input may cause a 5xx.

Besides "no server error", every response must match the schema it documents. Generate jobs the fuzzer
happens to make valid are shrunk to a tiny grid so they cost nothing; the engine has its own state folder.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from service_helpers import start_engine, stop_engine

#: Examples per operation; with about ten operations this keeps the run well under a minute.
EXAMPLES = 15


@pytest.fixture(scope="module")
def fuzz_engine(tmp_path_factory, allowed_root):
    engine = start_engine(tmp_path_factory.mktemp("fuzz-state"), allowed_root)
    yield engine
    stop_engine(engine)


def _shrink(case) -> None:
    body = case.body
    if isinstance(body, dict) and body.get("kind") == "generate" and isinstance(body.get("params"), dict):
        body["params"].update(n=1, shape=16, spacing=8)


def test_no_request_makes_a_server_error(fuzz_engine):
    client = fuzz_engine.client(timeout=60)
    schema = schemathesis.openapi.from_dict(client._json("GET", "/openapi.json"))
    headers = {"Authorization": f"Bearer {client.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            _shrink(case)
            case.call_and_validate(base_url=fuzz_engine.url, headers=headers, checks=checks, timeout=60)

        fuzz()
    for job in client.jobs():
        if job["state"] in ("queued", "running"):
            client.cancel(job["id"])
    assert fuzz_engine.alive()

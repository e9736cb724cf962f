"""Property-based API testing from the OpenAPI schema: no generated request may cause a server error."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from accounts.services import token_authenticate
from config.wsgi import application
from core.testing import api_token

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def root_token(db, make_user):
    root = make_user("schema-root", is_root=True)
    make_user("schema-user")
    # As Django's test client does: in-process requests must not close the
    # connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"user": root, "key": api_token(root)}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_api_never_errors(root_token):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "DELETE" and operation.path in ("/api/auth/token/", "/api/auth/tokens/{id}/"):
            continue  # would revoke the token the rest of the run uses (tested in test_auth / accounts tests)
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if token_authenticate(key=root_token["key"]) is None:
                # A generated password change of root ended its tokens (as it must): take a new one.
                root_token["key"] = api_token(root_token["user"])
            response = case.call(headers={"Authorization": f"Token {root_token['key']}"})
            # 503 is health's documented "something is down" (no worker runs in this test).
            expected_503 = case.formatted_path == "/api/health/" and response.status_code == 503
            if response.status_code >= 500 and not expected_503:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {case.body!r:.200}")

        run()
    assert operations >= 8
    assert not failures, "\n".join(failures[:20])


def test_schema_and_docs_are_served_locally(client, db):
    schema_response = client.get("/api/schema/")
    assert schema_response.status_code == 200 and b"openapi" in schema_response.content
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs.lower()
    assert "cdn" not in docs.lower() and "https://" not in docs

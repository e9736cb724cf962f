"""The token endpoints keep the contract their schema states: schemathesis with all its checks."""

import pytest
import schemathesis
from schemathesis import GenerationMode
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.services import token_authenticate
from config.wsgi import application
from tests.support import api_token

EXAMPLES = 40
NO_INPUT = {"/api/auth/token/", "/api/auth/tokens/"}  # DELETE and GET there take nothing


@pytest.fixture
def contract_user(db, make_user):
    # As Django's test client does: in-process requests must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield make_user("contract")
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_token_endpoints_pass_every_check(contract_user, mode):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    key = {"value": api_token(contract_user)}
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/auth/"):
            continue
        operations += 1
        # Generated usernames and passwords are well formed but never an account's: the login answers 400
        # (as it must). schemathesis makes the same exception for operations that mint credentials.
        excluded = [positive_data_acceptance] if operation.path == "/api/auth/token/" else []

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            if token_authenticate(key=key["value"]) is None:  # a generated DELETE revoked it
                key["value"] = api_token(contract_user)
            case.call_and_validate(headers={"Authorization": f"Token {key['value']}"}, excluded_checks=excluded,
                                   environ_base={"REMOTE_ADDR": "127.0.0.1"})

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid (no parameters or body): only the valid run applies.
            assert mode == GenerationMode.NEGATIVE and operation.path in NO_INPUT, operation.path
            operations -= 1
        except Exception as exc:  # one failure group per operation, with schemathesis' own report
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations == (5 if mode == GenerationMode.POSITIVE else 5 - len(NO_INPUT))
    assert not failures, "\n\n".join(failures)

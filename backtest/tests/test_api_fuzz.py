"""Property-based requests (from the OpenAPI schema) to the backtest and market endpoints: never a 500."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from config.wsgi import application
from accounts.services import token_authenticate
from tests.support import api_token

EXAMPLES = 25


@pytest.fixture
def token(db, make_user, btc):
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield api_token(make_user("fuzzer"))
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("staff", [False, True], ids=["user", "staff"])
def test_backtest_api_never_errors(token, monkeypatch, staff):
    from backtest import market_services, services

    monkeypatch.setattr(services, "job_enqueue", lambda **kw: None)  # no worker here; creation is what is fuzzed
    monkeypatch.setattr(market_services, "job_enqueue", lambda **kw: None)
    if staff:  # staff may import bars: fuzz the upload as staff too (a user only gets 403 there)
        # update(), not save(): a role change through save() would end the token (accounts.signals)
        fuzzer = token_authenticate(key=token).user
        type(fuzzer).objects.filter(pk=fuzzer.pk).update(is_staff=True)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(("/api/backtest/", "/api/market/")):
            continue
        if staff and "import" not in operation.path:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(headers={"Authorization": f"Token {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query!r} -> {response.status_code}: "
                                f"{case.body!r:.300}")

        run()
    assert operations == (2 if staff else 22)  # every backtest and market operation, portfolios and walk-forwards included
    assert not failures, "\n".join(failures[:20])

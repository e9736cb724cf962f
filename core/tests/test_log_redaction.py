"""Secrets a client put where they do not belong are redacted before any log handler sees them."""

import logging

from core.log_redaction import LOGGERS, RedactSecrets, redact

KEY = "9f" * 32


def test_query_header_and_subprotocol_secrets_are_redacted():
    assert redact(f"GET /ws/jobs/x/1/?after=3&token={KEY} HTTP/1.1") == "GET /ws/jobs/x/1/?after=3&token=[redacted] HTTP/1.1"
    assert KEY not in redact(f"Authorization: Bearer {KEY}")
    assert KEY not in redact(f"offered platform.v1, token.{KEY}")
    assert redact("GET /api/trades/?page=2 HTTP/1.1") == "GET /api/trades/?page=2 HTTP/1.1"


def test_the_filter_keeps_uvicorns_access_arguments_in_shape():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/api/x/?token={KEY}", "1.1", 401), None)
    assert RedactSecrets().filter(record)
    assert record.args == ("127.0.0.1:5", "GET", "/api/x/?token=[redacted]", "1.1", 401)
    assert KEY not in record.getMessage()


def test_installed_on_the_server_and_request_loggers():
    for name in LOGGERS:
        assert any(isinstance(f, RedactSecrets) for f in logging.getLogger(name).filters), name

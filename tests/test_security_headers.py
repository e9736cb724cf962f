"""Content-Security-Policy and Permissions-Policy on every response; no template needs inline script or style.

The browser check (every page with DEBUG off and collected static files, no violation, charts render, an
injected inline script blocked) is tests/e2e/test_csp_browser.py.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

BASE_DIR = Path(settings.BASE_DIR)


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/admin/login/", "/api/docs/", "/api/health/",
                                  "/no-such-page/"])
def test_every_response_has_the_policy(client, path):
    response = client.get(path)
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "usb", "payment", "serial", "hid"):
        assert f"{feature}=()" in permissions


def test_websocket_source_follows_the_scheme(client, settings):
    settings.SECURE_SSL_REDIRECT = False
    response = client.get("/accounts/login/", secure=True)
    assert directives(response)["connect-src"] == ["'self'", "wss://testserver"]


def test_logged_in_pages_and_admin_have_the_policy(client, root_user):
    client.force_login(root_user)
    for path in ("/", "/analyzer/", "/admin/", "/admin/accounts/user/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert directives(response)["script-src"] == ["'self'"], path


def test_api_docs_load_their_start_up_code_as_a_script_file(client, root_user):
    client.force_login(root_user)
    html = client.get("/api/docs/").content.decode()
    assert re.search(r'<script src="/api/docs/\?script="', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert client.get("/api/docs/?script=").status_code == 200


TEMPLATE_DIRS = [BASE_DIR / "templates", *sorted(BASE_DIR.glob("*/templates"))]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:\-][\w:\-]*)\s*=", re.I)
STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)


def test_no_template_has_inline_script_handlers_or_style_attributes():
    found = []
    templates = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html")]
    assert len(templates) > 30
    for path in templates:
        text = path.read_text()
        for name, pattern in (("inline script", INLINE_SCRIPT), ("inline handler", HANDLER),
                              ("style attribute", STYLE_ATTR)):
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(BASE_DIR)}: {name}: {match.group(0).strip()}")
    assert found == []


def test_htmx_is_configured_without_eval_or_injected_styles(client):
    html = client.get("/accounts/login/").content.decode()
    assert '<meta name="htmx-config" content=\'{"allowEval": false, "includeIndicatorStyles": false}\'>' in html

"""Hostile request bodies: deep JSON is a 400 with a message, an oversize body a JSON 413, never a 500.

Against a real server (chunked bodies, the server-wide cap): tests/e2e/test_request_limits_live.py.
"""

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from core.parsers import json_depth

pytestmark = pytest.mark.django_db

DEPTH_MESSAGE = "JSON parse error - the document nests arrays and objects more than 64 levels deep."


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def nested_objects(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("path", ["/api/trades/preview/", "/api/backtest/runs/", "/api/users/"])
@pytest.mark.parametrize("body", [nested(5000), nested_objects(5000)], ids=["arrays", "objects"])
def test_deeply_nested_json_is_a_400_with_a_message(auth_client, root_user, path, body):
    response = auth_client(root_user).post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": DEPTH_MESSAGE}


def test_nesting_up_to_the_limit_is_parsed(auth_client, root_user):
    # 64 levels is allowed: the request reaches the serializer, which refuses the shape.
    response = auth_client(root_user).post("/api/users/", json.dumps({"extra": json.loads(nested(63))}),
                                           content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" not in json.dumps(response.json())
    response = auth_client(root_user).post("/api/users/", json.dumps({"extra": json.loads(nested(64))}),
                                           content_type="application/json")
    assert response.json() == {"detail": DEPTH_MESSAGE}


def test_brackets_inside_strings_do_not_count():
    assert json_depth(json.dumps({"a": "[" * 10_000, "b": ['x\\"]]]]', "{{{"]})) == 2
    assert json_depth(nested(5000)) == 5000
    assert json_depth('"just a string"') == 0


def test_malformed_json_is_a_400(auth_client, root_user):
    response = auth_client(root_user).post("/api/users/", '{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")


def test_json_body_over_the_limit_is_a_json_413(auth_client, root_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"username": "x" * 2000})
    response = auth_client(root_user).post("/api/users/", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The request body is too large; the limit is 1,000 bytes."}


def test_form_body_over_the_limit_is_a_json_413(auth_client, root_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = auth_client(root_user).post("/api/users/", f"username={'x' * 2000}",
                                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large; the limit is 1,000 bytes."}


def test_too_many_form_fields_is_a_json_400(auth_client, root_user, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"f{i}=1" for i in range(50))
    response = auth_client(root_user).post("/api/users/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


def _api_routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_routes(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            yield route


def _concrete(route: str) -> str:
    import re

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "x" if m.group(1) in ("slug", "name") else "1", route)
    return "/" + path.replace("^", "").replace("$", "")


def test_no_api_route_answers_500_to_deep_json(auth_client, root_user, make_user):
    client = auth_client(root_user)
    routes = sorted({_concrete(route) for route in _api_routes()})
    assert "/api/trades/preview/" in routes and len(routes) > 20
    checked = 0
    for path in routes:
        for method in ("post", "put", "patch"):
            response = getattr(client, method)(path, nested(5000), content_type="application/json")
            # Routes that never read a body answer before parsing (no such method / object / media type).
            assert response.status_code in (400, 403, 404, 405, 415), (method, path, response.status_code)
            if response.status_code == 400:
                assert response.json() == {"detail": DEPTH_MESSAGE}, (method, path)
                checked += 1
    assert checked >= 10

from django.conf import settings
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import selectors


HEALTH = inline_serializer(
    "Health",
    fields={
        "ok": serializers.BooleanField(),
        "database": serializers.DictField(),
        "channel_layer": serializers.DictField(),
        "worker": serializers.DictField(),
    },
)


class HealthApi(APIView):
    """Database, channel layer and worker heartbeat status (authenticated)."""

    @extend_schema(responses={200: HEALTH, 503: OpenApiResponse(HEALTH, description="Something is down (`ok` is false)")})
    def get(self, request):
        status = selectors.health_status()
        return Response(status, status=200 if status["ok"] else 503)


@csrf_exempt  # answers 404 whatever the method: there is nothing to protect
def api_not_found(request, *args, **kwargs):
    """Any other path under /api/: a JSON 404 like the API's own, not the HTML error page.

    It also keeps Django's APPEND_SLASH behaviour, which a catch-all pattern would otherwise end:
    a path missing only its final slash is redirected to the API path it names.
    """
    path = request.path_info
    if settings.APPEND_SLASH and not path.endswith("/"):
        try:
            match = resolve(path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return JsonResponse({"detail": "Not found."}, status=404)


def _api_sections() -> dict[str, list[str]]:
    """{section: its paths without arguments}, read from the URL configuration, so a new endpoint is listed."""
    from django.urls import URLPattern, URLResolver, get_resolver

    sections: dict[str, list[str]] = {}
    for top in get_resolver().url_patterns:
        if not (isinstance(top, URLResolver) and str(top.pattern) == "api/"):
            continue
        for pattern in top.url_patterns:
            route = str(pattern.pattern)
            if not isinstance(pattern, URLPattern) or "<" in route or not route:
                continue
            sections.setdefault(route.split("/")[0], []).append(f"/api/{route}")
    return {name: sorted(paths) for name, paths in sorted(sections.items())}


class ApiIndexApi(APIView):
    """The API's sections and where its documentation is (for a person or a client finding its way)."""

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({
            "docs": request.build_absolute_uri("/api/docs/"),
            "schema": request.build_absolute_uri("/api/schema/"),
            "authentication": "Send 'Authorization: Token <key>'; create a key on the API tokens page.",
            "sections": _api_sections(),
        })

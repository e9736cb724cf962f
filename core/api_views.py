from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import selectors


class HealthApi(APIView):
    """Database, channel layer and worker heartbeat status (authenticated)."""

    @extend_schema(
        responses=inline_serializer(
            "Health",
            fields={
                "ok": serializers.BooleanField(),
                "database": serializers.DictField(),
                "channel_layer": serializers.DictField(),
                "worker": serializers.DictField(),
            },
        )
    )
    def get(self, request):
        status = selectors.health_status()
        return Response(status, status=200 if status["ok"] else 503)

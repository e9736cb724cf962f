from drf_spectacular.openapi import AutoSchema as BaseAutoSchema


class AutoSchema(BaseAutoSchema):
    """Name nested Input/Output serializers after their view, so components never collide.

    `UserListCreateApi.InputSerializer` becomes the component `UserListCreateApiInput`.
    """

    def get_serializer_name(self, serializer, direction):
        cls = serializer.__class__
        if "." in cls.__qualname__ and "<locals>" not in cls.__qualname__:
            return cls.__qualname__.replace(".", "")
        return super().get_serializer_name(serializer, direction)

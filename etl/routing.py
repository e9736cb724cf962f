from django.urls import re_path

from etl.consumers import FetchJobRowsConsumer

websocket_urlpatterns = [
    re_path(r"^ws/etl/jobs/$", FetchJobRowsConsumer.as_asgi()),
]

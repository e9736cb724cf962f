from django.urls import re_path

from trades.consumers import ExportStreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/trades/exports/(?P<pk>\d+)/$", ExportStreamConsumer.as_asgi()),
]

from django.urls import re_path

from scripts_runner.consumers import RunLogConsumer

websocket_urlpatterns = [
    re_path(r"^ws/scripts/runs/(?P<pk>\d+)/$", RunLogConsumer.as_asgi()),
]

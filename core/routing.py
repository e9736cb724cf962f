from django.urls import re_path

from core.consumers import JobStreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/jobs/(?P<kind>[a-z0-9_]+\.[a-z0-9_]+)/(?P<pk>\d+)/$", JobStreamConsumer.as_asgi()),
]

from django.urls import re_path

from etl.consumers import FetchJobRowsConsumer, FetchJobStreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/etl/jobs/$", FetchJobRowsConsumer.as_asgi()),
    re_path(r"^ws/etl/jobs/(?P<pk>\d+)/$", FetchJobStreamConsumer.as_asgi()),
]

from django.urls import re_path

from analyzer.consumers import SessionChatConsumer

websocket_urlpatterns = [
    re_path(r"^ws/analyzer/sessions/(?P<pk>\d+)/$", SessionChatConsumer.as_asgi()),
]

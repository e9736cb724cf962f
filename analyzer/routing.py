from django.urls import re_path

from analyzer.consumers import SessionChatConsumer, SessionProcessingConsumer

websocket_urlpatterns = [
    re_path(r"^ws/analyzer/sessions/(?P<pk>\d+)/$", SessionChatConsumer.as_asgi()),
    re_path(r"^ws/analyzer/sessions/(?P<pk>\d+)/processing/$", SessionProcessingConsumer.as_asgi()),
]

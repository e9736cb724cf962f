from core.streams import stream_route
from scripts_runner.consumers import RunLogStream

websocket_urlpatterns = [stream_route(RunLogStream)]

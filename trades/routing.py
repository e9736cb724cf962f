from core.streams import stream_route
from trades.consumers import ExportStream

websocket_urlpatterns = [stream_route(ExportStream)]

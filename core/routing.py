from core.consumers import WorkerCheckStream
from core.streams import stream_route

websocket_urlpatterns = [stream_route(WorkerCheckStream)]

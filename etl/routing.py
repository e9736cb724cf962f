from core.streams import stream_route
from etl.consumers import FetchJobRowsStream, FetchJobStream, RecordExportStream

websocket_urlpatterns = [stream_route(FetchJobRowsStream), stream_route(FetchJobStream), stream_route(RecordExportStream)]

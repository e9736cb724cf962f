from backtest.consumers import BarImportStream, RunStream, SweepStream
from core.streams import stream_route

websocket_urlpatterns = [stream_route(RunStream), stream_route(SweepStream), stream_route(BarImportStream)]

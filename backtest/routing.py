from backtest.consumers import BarImportStream, PortfolioStream, RunStream, SweepStream
from core.streams import stream_route

websocket_urlpatterns = [stream_route(RunStream), stream_route(SweepStream), stream_route(BarImportStream),
                         stream_route(PortfolioStream)]

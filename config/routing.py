from analyzer.routing import websocket_urlpatterns as analyzer_ws
from backtest.routing import websocket_urlpatterns as backtest_ws
from core.routing import websocket_urlpatterns as core_ws
from etl.routing import websocket_urlpatterns as etl_ws
from scripts_runner.routing import websocket_urlpatterns as scripts_ws
from trades.routing import websocket_urlpatterns as trades_ws

websocket_urlpatterns = core_ws + trades_ws + scripts_ws + etl_ws + analyzer_ws + backtest_ws

from analyzer.consumers import AnswerStream, ProcessingStream, SessionChatStream
from core.streams import stream_route

websocket_urlpatterns = [stream_route(SessionChatStream), stream_route(ProcessingStream), stream_route(AnswerStream)]

"""A scripted OpenAI-compatible server on 127.0.0.1 speaking Chat Completions the way Ollama, vLLM and
llama.cpp's server do: HTTP/1.1 with chunked transfer encoding, server-sent events `data: {chunk}` — a first
chunk with the assistant role, content deltas, tool-call deltas (id and name first, then the arguments split
across chunks), a chunk with `finish_reason`, a last chunk with `choices: []` and `usage` when the request
asked for it (`stream_options.include_usage`), then `data: [DONE]`. Non-streamed requests get a
`chat.completion` object. It can also answer with an error status (401, 429 with `retry-after`, 500…),
send an error event inside the stream, or hang without answering (for timeouts).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERROR_BODIES = {
    400: ("invalid_request_error", "This model's maximum context length is 8192 tokens."),
    401: ("invalid_request_error", "Incorrect API key provided."),
    404: ("invalid_request_error", "The model `scripted-model` does not exist."),
    429: ("rate_limit_error", "Rate limit reached for requests."),
    500: ("server_error", "model overloaded"),
}


def text_turn(text: str, *, delay: float = 0.0, pieces: int | None = None) -> list:
    words = text.split(" ")
    chunks = [{"delta": {"content": word + (" " if i < len(words) - 1 else "")}} for i, word in enumerate(words)]
    chunks.append({"delta": {}, "finish_reason": "stop"})
    return [("delay", delay)] + chunks if delay else chunks


def tool_turn(*calls: tuple[str, dict], text: str = "") -> list:
    """Tool calls streamed the way OpenAI does: id+name first, then the arguments in fragments."""
    chunks = text_turn(text)[:-1] if text else []
    for index, (name, args) in enumerate(calls):
        raw = json.dumps(args)
        chunks.append({"delta": {"tool_calls": [
            {"index": index, "id": f"call_{index}_{name}", "type": "function",
             "function": {"name": name, "arguments": ""}}]}})
        step = max(1, len(raw) // 3)
        for start in range(0, len(raw), step):
            chunks.append({"delta": {"tool_calls": [
                {"index": index, "function": {"arguments": raw[start:start + step]}}]}})
    chunks.append({"delta": {}, "finish_reason": "tool_calls"})
    return chunks


def error_turn(message: str) -> list:
    """An error event inside an open stream (vLLM and llama.cpp send one when generation fails)."""
    return [("error", {"message": message, "type": "server_error"})]


class FakeOpenAI:
    """`turns`: one list of chunks per streamed request, in order. `errors`: (status, headers) answered first,
    one per request (the SDK's retries consume them). `status`: every request answers that status. `hang`: accept
    requests and never answer. `usage`: (prompt_tokens, completion_tokens) reported per streamed request."""

    def __init__(self, turns: list, *, title: str = "Scripted title", status: int = 200, chunk_delay: float = 0.0,
                 errors: list[tuple[int, dict]] | None = None, hang: bool = False,
                 usage: tuple[int, int] = (120, 30), model: str = "scripted-model"):
        self.turns = list(turns)
        self.title = title
        self.status = status
        self.chunk_delay = chunk_delay
        self.errors = list(errors or [])
        self.hang = hang
        self.usage = usage
        self.model = model
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.request_times: list[float] = []
        self.chunks_sent = 0
        self.disconnected = threading.Event()
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _event(self, payload) -> None:
                data = b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                owner.requests.append(body)
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                owner.request_times.append(time.monotonic())
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                if owner.hang:
                    owner.stopping.wait(60)
                    return
                status, headers = owner.errors.pop(0) if owner.errors else (owner.status, {})
                if status != 200:
                    kind, message = ERROR_BODIES.get(status, ("server_error", "failed"))
                    return self._json(status, {"error": {"message": message, "type": kind, "code": None}}, headers)
                created = int(time.time())
                if not body.get("stream"):
                    return self._json(200, {
                        "id": "chatcmpl-title", "object": "chat.completion", "created": created, "model": owner.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": owner.title},
                                     "finish_reason": "stop", "logprobs": None}],
                        "usage": {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45}})
                turn = owner.turns.pop(0) if owner.turns else tool_turn(("finish", {}))
                with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                ident = f"chatcmpl-{len(owner.requests)}"

                def chunk(choice: dict | None, usage=None) -> dict:
                    payload = {"id": ident, "object": "chat.completion.chunk", "created": created,
                               "model": owner.model, "system_fingerprint": None,
                               "choices": [] if choice is None else [
                                   {"index": 0, "logprobs": None, "finish_reason": None, **choice}]}
                    if with_usage:
                        payload["usage"] = usage
                    return payload

                try:
                    self._event(chunk({"delta": {"role": "assistant", "content": ""}}))
                    for item in turn:
                        if isinstance(item, tuple) and item[0] == "delay":
                            owner.chunk_delay = item[1]
                            continue
                        if owner.chunk_delay:
                            if owner.stopping.wait(owner.chunk_delay):
                                return
                        if isinstance(item, tuple) and item[0] == "error":
                            self._event({"error": item[1]})
                            break
                        self._event(chunk(item))
                        owner.chunks_sent += 1
                    else:
                        if with_usage:
                            prompt, completion = owner.usage
                            self._event(chunk(None, {"prompt_tokens": prompt, "completion_tokens": completion,
                                                     "total_tokens": prompt + completion}))
                    self._event(b"[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    owner.disconnected.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

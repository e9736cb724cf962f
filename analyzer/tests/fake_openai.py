"""A scripted OpenAI-compatible server on 127.0.0.1: streams chat-completion chunks (text and tool calls)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def text_turn(text: str, *, delay: float = 0.0, pieces: int | None = None) -> list:
    words = text.split(" ")
    chunks = []
    for i, word in enumerate(words):
        chunks.append({"choices": [{"index": 0, "delta": {"content": word + (" " if i < len(words) - 1 else "")}}]})
    return [("delay", delay)] + chunks if delay else chunks


def tool_turn(*calls: tuple[str, dict], text: str = "") -> list:
    """Tool calls streamed the way OpenAI does: id+name first, then the arguments in fragments."""
    chunks = text_turn(text) if text else []
    for index, (name, args) in enumerate(calls):
        raw = json.dumps(args)
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "id": f"call_{index}_{name}", "type": "function",
             "function": {"name": name, "arguments": ""}}]}}]})
        step = max(1, len(raw) // 3)
        for start in range(0, len(raw), step):
            chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": index, "function": {"arguments": raw[start:start + step]}}]}}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return chunks


class FakeOpenAI:
    def __init__(self, turns: list, *, title: str = "Scripted title", status: int = 200, chunk_delay: float = 0.0):
        self.turns = list(turns)
        self.title = title
        self.status = status
        self.chunk_delay = chunk_delay
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.chunks_sent = 0
        self.disconnected = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                owner.requests.append(body)
                owner.headers.append(dict(self.headers))
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "model overloaded"}}')
                    return
                if not body.get("stream"):
                    payload = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                                                                "content": owner.title}}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                turn = owner.turns.pop(0) if owner.turns else tool_turn(("finish", {}))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for chunk in turn:
                        if isinstance(chunk, tuple) and chunk[0] == "delay":
                            owner.chunk_delay = chunk[1]
                            continue
                        if owner.chunk_delay:
                            time.sleep(owner.chunk_delay)
                        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                        self.wfile.flush()
                        owner.chunks_sent += 1
                    self.wfile.write(b"data: [DONE]\n\n")
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
        self.server.shutdown()
        self.server.server_close()

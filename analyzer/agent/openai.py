"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server…), streamed.

Plain httpx, so the same code talks to every compatible server: SSE lines
`data: {...}` carrying `choices[0].delta.content` and `delta.tool_calls`
fragments, ended by `data: [DONE]`. Closing the stream aborts the call.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable

import httpx

from analyzer import conf
from analyzer.agent.base import Provider, ProviderError, ToolCall, Turn


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, model: str | None = None,
                 timeout: float | None = None):
        self.base_url = (base_url or conf.OPENAI_BASE_URL).rstrip("/")
        self.api_key = conf.OPENAI_API_KEY if api_key is None else api_key
        self.model = model or conf.OPENAI_MODEL
        self.timeout = timeout or conf.OPENAI_TIMEOUT_SECONDS

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _read_stream(self, body: dict, lines: queue.Queue, abandon: threading.Event) -> None:
        """Reader thread: puts ("line", text) items, then ("end", None) or ("error", ProviderError)."""
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout, connect=10.0)) as client:
                with client.stream("POST", f"{self.base_url}/chat/completions", json=body,
                                   headers=self._headers()) as response:
                    if response.status_code >= 400:
                        detail = response.read().decode("utf-8", "replace")[:500]
                        lines.put(("error", ProviderError(
                            f"The LLM endpoint answered HTTP {response.status_code}: {detail}")))
                        return
                    for line in response.iter_lines():
                        if abandon.is_set():
                            return  # leaving the block closes the stream: the server stops generating
                        lines.put(("line", line))
            lines.put(("end", None))
        except httpx.HTTPError as exc:
            lines.put(("error", ProviderError(f"Could not reach the LLM endpoint at {self.base_url}: {exc}")))
        except Exception as exc:  # never leave the caller waiting
            lines.put(("error", ProviderError(f"The LLM call failed: {type(exc).__name__}: {exc}")))

    def complete(self, *, messages, tools, on_text: Callable[[str], None], should_stop: Callable[[], bool]) -> Turn:
        body = {"model": self.model, "messages": messages, "tools": tools, "stream": True, "temperature": 0}
        text_parts: list[str] = []
        calls: dict[int, dict] = {}
        # The HTTP read happens in a reader thread so that a stop (or the answer's time limit) is noticed
        # within a fraction of a second even while the server sends nothing (a model still reading its prompt).
        lines: queue.Queue = queue.Queue()
        abandon = threading.Event()
        threading.Thread(target=self._read_stream, args=(body, lines, abandon), daemon=True).start()
        last_check = time.monotonic()
        try:
            while True:
                try:
                    kind, value = lines.get(timeout=0.25)
                except queue.Empty:
                    if should_stop():
                        return Turn(text="".join(text_parts))
                    continue
                if kind == "error":
                    raise value
                if kind == "end":
                    break
                now = time.monotonic()
                if now - last_check > 0.3:
                    last_check = now
                    if should_stop():
                        return Turn(text="".join(text_parts))
                line = value.strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    raise ProviderError(f"The LLM endpoint sent malformed data: {payload[:200]}") from None
                if chunk.get("error"):
                    raise ProviderError(f"The LLM endpoint reported an error: {chunk['error']}")
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        text_parts.append(delta["content"])
                        on_text(delta["content"])
                    for fragment in delta.get("tool_calls") or []:
                        slot = calls.setdefault(int(fragment.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                        if fragment.get("id"):
                            slot["id"] = fragment["id"]
                        function = fragment.get("function") or {}
                        if function.get("name"):
                            slot["name"] += function["name"]
                        if function.get("arguments"):
                            slot["arguments"] += function["arguments"]
        finally:
            abandon.set()
        tool_calls = [
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"])
            for index, slot in sorted(calls.items())
        ]
        return Turn(text="".join(text_parts), tool_calls=tool_calls)

    def title(self, *, filename: str, question: str, answer_text: str) -> str:
        body = {
            "model": self.model,
            "stream": False,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "Write a title of at most 6 words for this data analysis chat. "
                                              "Answer with the title only."},
                {"role": "user", "content": f"File: {filename}\nQuestion: {question}\nAnswer: {answer_text[:1000]}"},
            ],
        }
        try:
            response = httpx.post(f"{self.base_url}/chat/completions", json=body,
                                  headers={k: v for k, v in self._headers().items() if k != "Accept"},
                                  timeout=self.timeout)
            response.raise_for_status()
            title = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, ValueError, TypeError):
            return super().title(filename=filename, question=question, answer_text=answer_text)
        title = " ".join(title.strip().strip('"').split())[:120]
        return title or super().title(filename=filename, question=question, answer_text=answer_text)

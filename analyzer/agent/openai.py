"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server…) through the
official SDK's `AsyncOpenAI`, streamed.

The answer's job body is synchronous and its stop check reads the database, so the SDK's coroutine runs on
an event loop in a helper thread and hands each chunk to the caller through a queue; the caller checks the
stop flag while it waits, and a stop cancels the coroutine, which closes the response (the server stops
generating) — within a fraction of a second, whether the server is streaming, silent, or the SDK is waiting
to retry. The SDK's own timeout and retries apply; its errors become messages a user can act on.
Only standard Chat Completions parameters are sent (model, messages, tools, stream, temperature, and the
usage chunk unless the provider is configured without it), which every compatible server accepts.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable

import openai

from analyzer.agent.base import Provider, ProviderError, ToolCall, Turn, Usage
from analyzer.agent.providers import ProviderConfig

POLL_SECONDS = 0.2


def provider_error(exc: BaseException, config: ProviderConfig) -> ProviderError:
    """The SDK's error as a message that says what happened and what to do about it."""
    who = f"The LLM provider “{config.label}”"
    tries = config.max_retries + 1
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(f"{who} did not answer within {config.timeout:g} s ({tries} attempt(s)). It may be "
                             "overloaded or still loading the model: try again, or ask the operator to raise its "
                             "timeout.")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"Could not reach the LLM endpoint “{config.label}” at {config.base_url} "
                             f"({tries} attempt(s)): check that the server is running and the base URL is right.")
    if isinstance(exc, openai.AuthenticationError):
        source = f" in {config.key_source}" if config.key_source else " (none is configured)"
        return ProviderError(f"{who} refused the API key (HTTP 401): check the key{source}.")
    if isinstance(exc, openai.PermissionDeniedError):
        return ProviderError(f"{who} does not allow this key to use the model {config.model} (HTTP 403).")
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(f"{who} has no model “{config.model}” or no chat-completions endpoint under "
                             f"{config.base_url} (HTTP 404): check the model name and the base URL.")
    if isinstance(exc, openai.RateLimitError):
        wait = exc.response.headers.get("retry-after") if exc.response is not None else None
        when = f"in {wait} s" if wait and wait.replace(".", "", 1).isdigit() else "in a minute"
        return ProviderError(f"{who} is limiting requests (HTTP 429) and still was after {tries} attempt(s): "
                             f"try again {when}. {_detail(exc)}".strip())
    if isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return ProviderError(f"{who} rejected the request (HTTP {exc.status_code}): {_detail(exc)} The conversation "
                             "may be too long for the model, or the model may not support tool calls; start a new "
                             "session or pick another analyst.")
    if isinstance(exc, openai.APIStatusError):
        again = " after {} attempt(s); try again later".format(tries) if exc.status_code >= 500 else ""
        return ProviderError(f"{who} failed with HTTP {exc.status_code}{again}. {_detail(exc)}".strip())
    if isinstance(exc, openai.APIError):  # an error event inside the stream
        return ProviderError(f"{who} reported an error while answering: {_detail(exc)}")
    return ProviderError(f"The LLM call to “{config.label}” failed: {type(exc).__name__}: {str(exc)[:300]}")


def _detail(exc: openai.APIError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    text = str(message or getattr(exc, "message", "") or "").strip()
    return (text[:300] + ("" if text.endswith(".") else ".")) if text else ""


class _Call:
    """One SDK coroutine on its own event loop in a helper thread; items arrive in `events`."""

    def __init__(self, work: Callable[[openai.AsyncOpenAI, queue.Queue], object], config: ProviderConfig):
        self.work, self.config = work, config
        self.events: queue.Queue = queue.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True, name="analyzer-llm-call")
        self.thread.start()
        self.started.wait(5)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            self.task = loop.create_task(self._run())
            self.started.set()
            loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            self.events.put(("cancelled", None))
        finally:
            self.started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _run(self) -> None:
        client = openai.AsyncOpenAI(
            base_url=self.config.base_url,
            # Never None: the SDK would fall back to the worker's OPENAI_API_KEY, meant for no one in particular.
            api_key=self.config.api_key or "no-key",
            timeout=self.config.timeout,
            max_retries=self.config.max_retries,
        )
        try:
            await self.work(client, self.events)
            self.events.put(("end", None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave the caller waiting
            self.events.put(("error", provider_error(exc, self.config)))
        finally:
            await client.close()

    def cancel(self) -> None:
        """Cancel the coroutine (which closes the response) and wait briefly for the thread to finish."""
        if self.loop is not None and self.task is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.task.cancel)
            except RuntimeError:  # the loop closed in between
                pass
        self.thread.join(timeout=2)


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, *, config: ProviderConfig):
        self.config = config
        self.name = config.name

    def _body(self, messages, tools) -> dict:
        body = {"model": self.config.model, "messages": messages, "stream": True, "temperature": 0}
        if tools:
            body["tools"] = tools
        if self.config.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def complete(self, *, messages, tools, on_text: Callable[[str], None], should_stop: Callable[[], bool]) -> Turn:
        body = self._body(messages, tools)

        async def work(client: openai.AsyncOpenAI, events: queue.Queue) -> None:
            stream = await client.chat.completions.create(**body)
            async with stream:
                async for chunk in stream:
                    events.put(("chunk", chunk))

        text_parts: list[str] = []
        calls: dict[int, dict] = {}
        usage: Usage | None = None
        call = _Call(work, self.config)
        last_check = time.monotonic()
        try:
            while True:
                try:
                    kind, value = call.events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if should_stop():
                        return self._turn(text_parts, calls, usage, messages, stopped=True)
                    continue
                if kind == "error":
                    raise value
                if kind in ("end", "cancelled"):
                    break
                now = time.monotonic()
                if now - last_check > POLL_SECONDS:
                    last_check = now
                    if should_stop():
                        return self._turn(text_parts, calls, usage, messages, stopped=True)
                if value.usage is not None:
                    usage = Usage(prompt_tokens=value.usage.prompt_tokens or 0,
                                  completion_tokens=value.usage.completion_tokens or 0)
                for choice in value.choices or []:
                    delta = choice.delta
                    if delta is None:
                        continue
                    if delta.content:
                        text_parts.append(delta.content)
                        on_text(delta.content)
                    for fragment in delta.tool_calls or []:
                        slot = calls.setdefault(int(fragment.index or 0), {"id": "", "name": "", "arguments": ""})
                        if fragment.id:
                            slot["id"] = fragment.id
                        if fragment.function is not None:
                            if fragment.function.name:
                                slot["name"] += fragment.function.name
                            if fragment.function.arguments:
                                slot["arguments"] += fragment.function.arguments
        finally:
            call.cancel()
        return self._turn(text_parts, calls, usage, messages)

    def _turn(self, text_parts, calls, usage, messages, *, stopped: bool = False) -> Turn:
        text = "".join(text_parts)
        tool_calls = [] if stopped else [
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"])
            for index, slot in sorted(calls.items())
        ]
        if usage is None:  # the server sent no usage chunk (or the turn was stopped): estimated, ~4 chars a token
            usage = Usage(prompt_tokens=len(str(messages)) // 4,
                          completion_tokens=(len(text) + sum(len(s["arguments"]) for s in calls.values())) // 4,
                          estimated=True)
        return Turn(text=text, tool_calls=tool_calls, usage=usage)

    def title(self, *, filename: str, question: str, answer_text: str) -> str:
        fallback = super().title(filename=filename, question=question, answer_text=answer_text)
        body = {
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "Write a title of at most 6 words for this data analysis chat. "
                                              "Answer with the title only."},
                {"role": "user", "content": f"File: {filename}\nQuestion: {question}\nAnswer: {answer_text[:1000]}"},
            ],
        }
        result: dict = {}

        async def work(client: openai.AsyncOpenAI, events: queue.Queue) -> None:
            response = await client.with_options(max_retries=0).chat.completions.create(**body)
            result["title"] = (response.choices[0].message.content or "") if response.choices else ""
            if response.usage is not None:
                result["usage"] = Usage(prompt_tokens=response.usage.prompt_tokens or 0,
                                        completion_tokens=response.usage.completion_tokens or 0)

        call = _Call(work, self.config)
        try:
            kind, _ = call.events.get(timeout=self.config.timeout + 5)
        except queue.Empty:
            kind = "timeout"
        finally:
            call.cancel()
        self.title_usage = result.get("usage")
        title = " ".join(str(result.get("title") or "").strip().strip('"').split())[:120]
        return title if kind == "end" and title else fallback

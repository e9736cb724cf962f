"""The agent loop: ask the provider for a turn, run its tool calls, feed results back — bounded in steps and time.

Nothing the model writes is executed as Python: tool arguments are JSON,
SQL goes to the locked-down DuckDB sandbox, plot specs are validated data.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from analyzer import conf, duck
from analyzer.agent.base import Provider, ToolCall, Turn
from analyzer.agent.context import DataContext
from analyzer.agent.plots import PlotInvalid, plot_spec_build
from analyzer.agent.tools import TOOL_NAMES, TOOLS


class Sink(Protocol):
    """Where the answer goes: each call persists one event (see analyzer.services.AnswerSink)."""

    def emit(self, kind: str, data: dict, rows_kept: list[dict] | None = None) -> None: ...

    def should_stop(self) -> bool: ...


_kept = threading.local()


def session_connection(data_path: str):
    """The sandboxed connection to one session's file, kept per worker thread between answers.

    Opening one costs about 0.1 s, more than most built-in answers; a thread keeps the connection of the
    last session it answered for and closes it when it answers for another one."""
    kept = getattr(_kept, "value", None)
    if kept is not None and kept[0] == data_path:
        return kept[1]
    if kept is not None:
        kept[1].close()
        _kept.value = None
    con = duck.sandbox_connect(data_path=data_path)
    _kept.value = (data_path, con)
    return con


def session_connection_drop() -> None:
    """Close the kept connection (after an error, so the next answer starts from a fresh one)."""
    kept = getattr(_kept, "value", None)
    _kept.value = None
    if kept is not None:
        kept[1].close()


class AnswerStopped(Exception):
    """The user pressed stop (or the answer ran out of time)."""


@dataclass
class LoopOutcome:
    steps: int = 0
    finished: bool = False
    texts: list[str] = field(default_factory=list)
    queries: int = 0
    plots: int = 0


class TextStreamer:
    """Buffers streamed text deltas and persists them in readable chunks (not one row per token)."""

    def __init__(self, sink: Sink, outcome: LoopOutcome, interval: float = 0.25):
        self.sink, self.outcome, self.interval = sink, outcome, interval
        self.buffer = ""
        self.last_flush = time.monotonic()

    def __call__(self, delta: str) -> None:
        self.buffer += delta
        if time.monotonic() - self.last_flush >= self.interval and self.buffer.strip():
            self.flush()

    def flush(self) -> None:
        if self.buffer.strip():
            self.sink.emit("text", {"text": self.buffer, "stream": True})
            self.outcome.texts.append(self.buffer)
        self.buffer = ""
        self.last_flush = time.monotonic()


def _result_for_model(result: duck.QueryResult, limit: int = 20) -> str:
    return json.dumps(
        {
            "columns": result.columns,
            "row_count": len(result.rows),
            "truncated": result.truncated,
            "rows": result.rows[:limit],
        },
        default=str,
    )[:8000]


class AgentLoop:
    def __init__(self, *, provider: Provider, context: DataContext, sink: Sink,
                 max_steps: int | None = None, deadline_seconds: float | None = None):
        self.provider, self.context, self.sink = provider, context, sink
        self.max_steps = max_steps or conf.MAX_STEPS
        self.deadline = time.monotonic() + (deadline_seconds or conf.ANSWER_TIMEOUT_SECONDS)
        self.plot_failures = 0
        self.outcome = LoopOutcome()
        self.results: dict[str, duck.QueryResult] = {}

    # --- guards ---------------------------------------------------------------------
    def stop_requested(self) -> bool:
        return time.monotonic() > self.deadline or self.sink.should_stop()

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise AnswerStopped(f"The answer took longer than {conf.ANSWER_TIMEOUT_SECONDS:g} s and was stopped.")
        if self.sink.should_stop():
            raise AnswerStopped("Stopped.")

    # --- running ----------------------------------------------------------------------
    def run(self, *, messages: list[dict]) -> LoopOutcome:
        for _ in range(self.max_steps):
            self.check()
            self.outcome.steps += 1
            streamer = TextStreamer(self.sink, self.outcome)
            turn: Turn = self.provider.complete(
                messages=messages, tools=TOOLS, on_text=streamer, should_stop=self.stop_requested
            )
            streamer.flush()
            self.check()
            messages.append(self._assistant_message(turn))
            if not turn.tool_calls:
                self.outcome.finished = True
                return self.outcome
            for call in turn.tool_calls:
                self.check()
                content, finished = self.execute(call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
                if finished:
                    self.outcome.finished = True
                    return self.outcome
        self.sink.emit("text", {"text": f"(Stopped after {self.max_steps} steps without finishing.)"})
        return self.outcome

    @staticmethod
    def _assistant_message(turn: Turn) -> dict:
        message: dict = {"role": "assistant", "content": turn.text or None}
        if turn.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
                for c in turn.tool_calls
            ]
        return message

    def execute(self, call: ToolCall) -> tuple[str, bool]:
        """Run one tool call; answer (content for the model, whether the answer is finished)."""
        if call.name not in TOOL_NAMES:
            return f"Error: unknown tool {call.name!r}; use one of {sorted(TOOL_NAMES)}.", False
        try:
            args = call.parsed()
        except ValueError as exc:
            return f"Error: {exc}", False
        handler: Callable[[dict], tuple[str, bool]] = getattr(self, f"tool_{call.name}")
        return handler(args)

    def tool_write_to_chat(self, args: dict) -> tuple[str, bool]:
        text = str(args.get("text") or "").strip()
        if not text:
            return "Error: `text` is empty.", False
        self.sink.emit("text", {"text": text[:20_000]})
        self.outcome.texts.append(text)
        return "Shown to the user.", False

    def tool_finish(self, args: dict) -> tuple[str, bool]:
        return "Finished.", True

    def _query(self, sql: str, max_rows: int | None = None) -> duck.QueryResult:
        """Run (or reuse, when the same SQL already ran in this answer) one sandboxed query."""
        limit = conf.RESULT_ROWS_KEPT if max_rows is None else max_rows
        cached = self.results.get(sql.strip())
        limited = re.match(r"^(.*\S)\s+LIMIT\s+(\d+)\s*;?$", sql.strip(), re.DOTALL | re.IGNORECASE)
        if cached is None and limited and limited.group(1) in self.results:
            # "<an earlier query> LIMIT n": the first n rows of that result.
            cached = self.results[limited.group(1)]
            limit = min(limit, int(limited.group(2)))
            cached = duck.QueryResult(columns=cached.columns, rows=cached.rows[:limit], truncated=False,
                                      seconds=0.0, sql=sql.strip()) if len(cached.rows) >= limit or not \
                cached.truncated else None
        if cached is not None and (len(cached.rows) >= limit or not cached.truncated):
            return duck.QueryResult(columns=cached.columns, rows=cached.rows[:limit],
                                    truncated=cached.truncated or len(cached.rows) > limit,
                                    seconds=0.0, sql=cached.sql)
        try:
            result = duck.query_run(
                data_path=self.context.data_path, sql=sql, max_rows=max_rows,
                timeout=min(conf.QUERY_TIMEOUT_SECONDS, max(1.0, self.deadline - time.monotonic())),
                cancel_check=self.sink.should_stop, con=session_connection(self.context.data_path),
            )
        except duck.QueryFailed:
            session_connection_drop()  # stopped or failed mid-query: the next query opens a fresh one
            raise
        self.results[sql.strip()] = result
        return result

    def tool_generate_query(self, args: dict) -> tuple[str, bool]:
        sql = str(args.get("sql") or "")
        explanation = str(args.get("explanation") or "")[:500]
        self.sink.emit("status", {"message": "Running query…"})
        self.outcome.queries += 1
        try:
            result = self._query(sql)
        except (duck.QueryRefused, duck.QueryFailed) as exc:
            if self.sink.should_stop():
                raise AnswerStopped("Stopped.") from None
            self.sink.emit("query_result", {"sql": sql[:20_000], "explanation": explanation, "is_error": True,
                                            "error": str(exc)[:2000], "result": []})
            return f"Error: {exc}", False
        shown = result.rows[: conf.RESULT_ROWS_SHOWN]
        self.sink.emit(
            "query_result",
            {
                "sql": result.sql,
                "explanation": explanation,
                "is_error": False,
                "columns": result.columns,
                "result": shown,
                "row_count": len(result.rows),
                "shown": len(shown),
                "truncated": result.truncated,
                "cells_truncated": result.cells_truncated,
                "seconds": round(result.seconds, 4),
            },
            rows_kept=result.rows,
        )
        return _result_for_model(result), False

    def tool_create_plot(self, args: dict) -> tuple[str, bool]:
        title = str(args.get("title") or "Chart")[:200]
        sql = str(args.get("sql") or "")
        spec = args.get("vega_lite_spec")
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError:
                spec = None
        self.sink.emit("status", {"message": "Creating chart…"})
        try:
            result = self._query(sql, max_rows=conf.PLOT_ROWS_MAX)
            full = plot_spec_build(spec=spec, rows=result.rows, columns=[c["name"] for c in result.columns],
                                   title=title)
        except (duck.QueryRefused, duck.QueryFailed, PlotInvalid) as exc:
            if self.sink.should_stop():
                raise AnswerStopped("Stopped.") from None
            self.plot_failures += 1
            if self.plot_failures > conf.PLOT_REPAIR_ATTEMPTS:
                self.sink.emit("error", {"message": f"Could not build a valid chart “{title}”: {exc}"})
                return f"Error: {exc}. Do not try this chart again.", False
            return f"Error: {exc}. Fix the spec or SQL and call create_plot again.", False
        self.outcome.plots += 1
        self.sink.emit("plot", {"title": title, "sql": result.sql, "vega_lite_spec": full,
                                "truncated": result.truncated})
        return f"Chart shown ({len(result.rows)} data rows).", False

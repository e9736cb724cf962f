"""The built-in analyst as a provider: reads the question (and the conversation before it), plans tool calls,
and once the query results come back writes a one-paragraph summary of them."""

from __future__ import annotations

import json
import re

from analyzer.agent.base import Provider, ToolCall, Turn
from analyzer.agent.builtin.frame import Frame, frame_read
from analyzer.agent.builtin.intent import Ask, Intent, intent_resolve
from analyzer.agent.builtin.overview import auto_analysis, examples_for, overview_text
from analyzer.agent.builtin.plans import Plan, fmt, plan_build
from analyzer.agent.builtin.schema import Schema
from analyzer.agent.context import DataContext
from analyzer.agent.tools import AUTO_ANALYSIS_PROMPT

RAW_SQL = re.compile(r"^\s*(select|with|from)\b", re.IGNORECASE)
ROW_COUNT = re.compile(r"^\W*(how many (rows|records|lines|entries)( are there| does (it|the \w+) have| in (it|the "
                       r"\w+))?|(what is the )?row count|(what is the )?number of (rows|records)|count (the |all )?"
                       r"rows|how (big|large) is (it|the \w+))\W*$")
ALSO = re.compile(r"\b(also|too|as well|additionally)\b")


def frame_merge(previous: Frame, current: Frame) -> Frame:
    """A follow-up ("and by island?", "only females", "as a chart") applied to the question before it."""
    merged = previous.copy()
    merged.question = current.question
    merged.problems = list(current.problems)
    if current.groups:
        merged.groups = previous.groups + current.groups if ALSO.search(current.question.lower()) else current.groups
    if current.filters:
        replaced = {f.column.name for f in current.filters}
        merged.filters = [f for f in previous.filters if f.column.name not in replaced] + current.filters
        merged.join = current.join
    if current.free:
        merged.free = current.free
    for name in ("chart", "grain", "season", "order", "n", "rank_measure", "order_by"):
        if getattr(current, name):
            setattr(merged, name, getattr(current, name))
    if current.agg and not (current.agg == "count" and current.how_many and previous.agg != "count"):
        merged.agg = current.agg
        merged.how_many = current.how_many
    merged.cues = previous.cues | (current.cues - {"describe", "distinct"})
    return merged


def is_followup(frame: Frame) -> bool:
    if frame.followup:
        return True
    if not frame.starts_open:
        return False
    numeric = [m for m in frame.free if m.column is not None and m.column.kind == "numeric"]
    asks_something = frame.cues - {"trend"} or frame.order or frame.how_many or numeric or frame.unknown
    return not asks_something and bool(frame.groups or frame.filters or frame.chart or frame.agg or frame.grain
                                       or frame.season)


class BuiltinProvider(Provider):
    name = "builtin"

    def __init__(self, *, context: DataContext):
        self.context = context
        self.schema = Schema(context.columns, context.profile, row_count=context.row_count,
                             filename=context.filename)
        # The session's summary table, when the loader made one (large files): see analyzer.rollup.
        self.schema.rollup = (context.detection or {}).get("rollup")
        self.plan: Plan | None = None
        self.planned: tuple[str, tuple[str, ...], Plan] | None = None

    def plan_for(self, messages: list[dict]) -> Plan:
        """The plan for the conversation's last question (read once: `is_sure` and the first turn share it)."""
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        question = str(messages[last_user].get("content") or "")
        earlier = tuple(str(m.get("content") or "") for m in messages[:last_user] if m["role"] == "user")
        if self.planned is None or self.planned[:2] != (question, earlier):
            if question == AUTO_ANALYSIS_PROMPT:
                plan = auto_analysis(self.context, self.schema, examples_for(self.schema))
            else:
                plan = self.decide(question, list(earlier))
            self.planned = (question, earlier, plan)
        return self.planned[2]

    def is_sure(self, messages: list[dict]) -> bool:
        """Whether the built-in analyst can answer the last question itself rather than ask back or refuse."""
        return self.plan_for(messages).sure

    # --- the provider protocol -------------------------------------------------------
    def complete(self, *, messages, tools, on_text, should_stop) -> Turn:
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        answered = [m for m in messages[last_user + 1:] if m["role"] == "assistant"]
        if not answered:
            self.plan = self.plan_for(messages)
            calls = list(self.plan.calls)
            if self.plan.summarize is None:
                calls.append(("finish", {}))
            return Turn(tool_calls=[ToolCall(id=f"call_{i}", name=n, arguments=json.dumps(a))
                                    for i, (n, a) in enumerate(calls)])
        text = ""
        results = [m for m in messages[last_user + 1:] if m["role"] == "tool"]
        query_results = [self._rows(m["content"]) for m, c in zip(results, self._calls_of(messages, last_user))
                         if c == "generate_query"]
        if self.plan and self.plan.summarize and query_results and query_results[0] is not None:
            try:
                text = self.plan.summarize(query_results[0])
            except (KeyError, IndexError, TypeError, ValueError):
                text = ""
        calls = [("write_to_chat", {"text": text})] if text else []
        calls.append(("finish", {}))
        return Turn(tool_calls=[ToolCall(id=f"call_s{i}", name=n, arguments=json.dumps(a))
                                for i, (n, a) in enumerate(calls)])

    @staticmethod
    def _calls_of(messages, last_user) -> list[str]:
        return [call["function"]["name"] for m in messages[last_user + 1:] for call in m.get("tool_calls") or []]

    @staticmethod
    def _rows(content: str) -> list[dict] | None:
        if not content or content.startswith("Error"):
            return None
        try:
            return json.loads(content)["rows"]
        except (ValueError, KeyError, TypeError):
            return None

    def title(self, *, filename: str, question: str, answer_text: str) -> str:
        words = re.sub(r"\s+", " ", question).strip().rstrip("?")
        if len(words) > 60:
            words = words[:57].rsplit(" ", 1)[0] + "…"
        return f"{words[:1].upper()}{words[1:]} — {filename}"[:200] if words else filename

    # --- reading the question --------------------------------------------------------
    def understand(self, question: str, earlier: list[str] = ()) -> Intent | Ask:
        """The intent of `question`, read in the light of the questions asked before it."""
        state: Frame | None = None
        pending: str | None = None  # a question answered by asking back
        for text in [*earlier, question]:
            frame = frame_read(text, self.schema)
            if pending is not None and not frame.cues and not frame.agg and not frame.order:
                combined = frame_read(f"{pending} {text}", self.schema)
                if isinstance(intent_resolve(combined, self.schema), Intent):
                    frame = combined
            elif state is not None and is_followup(frame):
                frame = frame_merge(state, frame)
            result = intent_resolve(frame, self.schema)
            if isinstance(result, Intent):
                state, pending = frame, None
            elif not result.refused:
                pending = frame.question
        return result

    def decide(self, question: str, earlier: list[str] = ()) -> Plan:
        q = question.strip()
        lower = q.lower()
        if RAW_SQL.match(q) or lower.startswith("sql:"):
            sql = q[4:].strip() if lower.startswith("sql:") else q
            return Plan(summarize=lambda rows: f"The query returned {fmt(len(rows))} row(s)"
                                               f"{' (first rows shown)' if len(rows) >= 20 else ''}.").query(
                sql, "Your SQL")
        if ROW_COUNT.match(lower):
            return Plan(summarize=lambda rows: f"The data has {fmt(rows[0]['row_count'])} rows and "
                                               f"{len(self.schema.columns)} columns.").query(
                "SELECT count(*) AS row_count FROM data", "Count the rows")
        result = self.understand(q, earlier)
        if isinstance(result, Ask):
            if result.refused:
                return self.cannot(result.text)
            plan = Plan().say(result.text)
            plan.sure = False
            return plan
        if result.kind == "overview":
            return Plan().say(overview_text(self.context, self.schema))
        if result.kind == "distinct" and result.chart and result.agg is None:
            result = Intent("aggregate", agg="count", groups=[result.target], filters=result.filters,
                            join=result.join, chart=result.chart, order="desc")
        return plan_build(result, self.schema)

    def cannot(self, reason: str = "") -> Plan:
        examples = examples_for(self.schema) + ["SELECT … FROM data (your own SQL)"]
        plan = Plan(sure=False)
        return plan.say(
            (reason + " " if reason else "") +
            "The built-in analyst cannot answer that question: it only understands common question shapes. An LLM "
            "provider is needed for free-form questions (pick one next to Send when one is configured; the operator "
            "configures them with ANALYZER_LLM_PROVIDERS). You can ask, for example: " + "; ".join(examples) + "."
        )

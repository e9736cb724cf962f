"""The provider interface: one model turn = streamed text plus tool calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field


class ProviderError(Exception):
    """The LLM endpoint failed (network, HTTP error, malformed stream); shown to the user."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it

    def parsed(self) -> dict:
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"The arguments of {self.name} are not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError(f"The arguments of {self.name} must be a JSON object.")
        return value


@dataclass
class Usage:
    """Tokens one model call used, as the server reported them (or estimated when it did not)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Turn:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None  # None: the provider costs nothing (the built-in analyst)


class Provider:
    name = "base"

    def complete(
        self,
        *,
        messages: list[dict],
        tools: list[dict],
        on_text: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> Turn:
        raise NotImplementedError

    def title(self, *, filename: str, question: str, answer_text: str) -> str:
        words = " ".join(question.split()[:8])
        return f"{words[:80]}" if words else filename

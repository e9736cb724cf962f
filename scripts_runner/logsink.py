"""Turning two byte pipes into ordered, capped log lines, handed out in blocks.

Lines are split and decoded a whole read at a time (not line by line in
Python), which keeps up with a script printing hundreds of thousands of lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# (stream, lines) — consecutive lines of one stream, in order.
Block = tuple[str, list[str]]


def _text(data: bytes) -> str:
    """Bytes as storable text: invalid UTF-8 and NUL (which PostgreSQL text refuses) as visible escapes.

    A byte that is not valid UTF-8 becomes `\\xff`, a NUL `\\x00`; every other character,
    control characters included, is kept as it is.
    """
    text = data.decode("utf-8", errors="backslashreplace")
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text


@dataclass
class LogSink:
    """Splits raw pipe data into lines, caps line length and total output.

    `feed` never blocks and never touches the database; `take` hands the
    pending blocks to whoever writes them.
    """

    max_bytes: int
    max_line: int
    total_bytes: int = 0
    total_lines: int = 0
    over_cap: bool = False
    truncated: bool = False
    pending: list[Block] = field(default_factory=list)
    pending_lines: int = 0
    oldest_pending: float | None = None
    stderr_tail: list[str] = field(default_factory=list)
    _partial: dict[str, bytes] = field(default_factory=lambda: {"stdout": b"", "stderr": b""})
    _skipping: dict[str, bool] = field(default_factory=lambda: {"stdout": False, "stderr": False})

    def _add(self, stream: str, lines: list[str]) -> None:
        if not lines:
            return
        if self.oldest_pending is None:
            self.oldest_pending = time.monotonic()
        if self.pending and self.pending[-1][0] == stream:
            self.pending[-1][1].extend(lines)
        else:
            self.pending.append((stream, list(lines)))
        self.pending_lines += len(lines)
        self.total_lines += len(lines)
        if stream == "stderr":
            self.stderr_tail = (self.stderr_tail + [line[:500] for line in lines[-5:]])[-5:]

    def system(self, text: str) -> None:
        self._add("system", [text])

    def _decode(self, parts: list[bytes]) -> list[str]:
        if max(map(len, parts)) > self.max_line:
            lines = []
            for part in parts:
                if len(part) > self.max_line:
                    self.truncated = True
                    text = _text(part[: self.max_line])
                    lines.append(f"{text} [line truncated at {self.max_line:,} bytes]")
                else:
                    lines.append(_text(part))
        else:
            # Newline is ASCII, so decoding the joined lines equals decoding each one.
            text = _text(b"\n".join(parts))
            lines = text.split("\n")
            if "\r" not in text:
                return lines
        if any(line.endswith("\r") for line in lines):
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        return lines

    def feed(self, stream: str, data: bytes) -> None:
        if self.over_cap or not data:
            return
        room = self.max_bytes - self.total_bytes
        if len(data) > room:
            data = data[:room]
            self.over_cap = True
        self.total_bytes += len(data)
        parts = (self._partial[stream] + data).split(b"\n")
        tail = parts.pop()
        if parts and self._skipping[stream]:
            parts.pop(0)  # the rest of a line already cut at max_line
            self._skipping[stream] = False
        if self._skipping[stream]:
            tail = b""
        elif len(tail) > self.max_line:
            parts.append(tail)
            tail = b""
            self._skipping[stream] = True
        self._partial[stream] = tail
        if parts:
            self._add(stream, self._decode(parts))
        if self.over_cap:
            self.close()
            self.system(f"[output limit of {self.max_bytes:,} bytes reached: the run was stopped]")

    def close(self) -> None:
        """End of output: whatever is left without a newline is a line too."""
        for stream in ("stdout", "stderr"):
            tail = self._partial[stream]
            if tail and not self._skipping[stream]:
                self._add(stream, self._decode([tail]))
            self._partial[stream] = b""

    def take(self) -> list[Block]:
        blocks, self.pending, self.oldest_pending, self.pending_lines = self.pending, [], None, 0
        return blocks

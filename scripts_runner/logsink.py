"""Turning two byte pipes into ordered, capped log lines, flushed in batches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class PendingLine:
    stream: str
    text: str


@dataclass
class LogSink:
    """Splits raw pipe data into lines, caps line length and total output.

    `feed` never blocks and never touches the database; `take` hands the
    pending lines to whoever writes them.
    """

    max_bytes: int
    max_line: int
    total_bytes: int = 0
    total_lines: int = 0
    over_cap: bool = False
    truncated: bool = False
    pending: list[PendingLine] = field(default_factory=list)
    oldest_pending: float | None = None
    _partial: dict[str, bytearray] = field(default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()})
    _skipping: dict[str, bool] = field(default_factory=lambda: {"stdout": False, "stderr": False})
    stderr_tail: list[str] = field(default_factory=list)

    def _emit(self, stream: str, raw: bytes | bytearray, *, marker: str = "") -> None:
        text = bytes(raw).decode("utf-8", errors="replace")
        if marker:
            text += marker
        if self.oldest_pending is None:
            self.oldest_pending = time.monotonic()
        self.pending.append(PendingLine(stream, text))
        self.total_lines += 1
        if stream == "stderr":
            self.stderr_tail.append(text[:500])
            del self.stderr_tail[:-5]

    def system(self, text: str) -> None:
        self._emit("system", text.encode())

    def feed(self, stream: str, data: bytes) -> None:
        if self.over_cap or not data:
            return
        room = self.max_bytes - self.total_bytes
        if len(data) > room:
            data = data[:room]
            self.over_cap = True
        self.total_bytes += len(data)
        partial = self._partial[stream]
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._skipping[stream]:
                self._skipping[stream] = False
                partial.clear()
            else:
                partial += data[start:end]
                self._emit_line(stream, partial)
                partial.clear()
            start = end + 1
        if not self._skipping[stream]:
            partial += data[start:]
            if len(partial) > self.max_line:
                self._emit_line(stream, partial)
                partial.clear()
                self._skipping[stream] = True
        if self.over_cap:
            self.close()
            self.system(f"[output limit of {self.max_bytes:,} bytes reached: the run was stopped]")

    def _emit_line(self, stream: str, line: bytearray) -> None:
        if len(line) > self.max_line:
            self.truncated = True
            self._emit(stream, line[: self.max_line], marker=f" [line truncated at {self.max_line:,} bytes]")
        else:
            if line.endswith(b"\r"):
                line = line[:-1]
            self._emit(stream, line)

    def close(self) -> None:
        """End of output: whatever is left without a newline is a line too."""
        for stream, partial in self._partial.items():
            if partial and not self._skipping[stream]:
                self._emit_line(stream, partial)
            partial.clear()

    def take(self) -> list[PendingLine]:
        lines, self.pending, self.oldest_pending = self.pending, [], None
        return lines

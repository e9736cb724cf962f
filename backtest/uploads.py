"""Upload handling of the bars import: every upload goes to a temporary file, never into memory,
and stops being stored once it passes `BACKTEST_IMPORT_MAX_BYTES`."""

from __future__ import annotations

from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler

from backtest import conf


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Streams each file to a temporary file; a file over the cap is dropped (the rest of the
    request body is read and discarded) and `too_large` says how far it got."""

    def __init__(self, request=None, *, max_bytes: int | None = None):
        super().__init__(request)
        self.max_bytes = conf.IMPORT_MAX_BYTES if max_bytes is None else max_bytes
        self.too_large: int = 0  # bytes received when the file was dropped

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.max_bytes:
            self.too_large = start + len(raw_data)
            raise SkipFile()
        return super().receive_data_chunk(raw_data, start)


def install(request) -> CappedTemporaryFileUploadHandler:
    """Replace the request's upload handlers (before anything reads the body)."""
    handler = CappedTemporaryFileUploadHandler(request)
    request.upload_handlers = [handler]
    return handler


def declared_too_large(request) -> int:
    """The declared body size when it is plainly over the cap (checked before reading the body)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
    return length if length > conf.IMPORT_MAX_BYTES + 64 * 1024 else 0

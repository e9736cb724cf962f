"""Keep secrets out of the logs even when a client puts one where it does not belong.

The platform never puts a token in a URL or a log line. A client might still send
`?token=KEY` (old websocket clients did); the access log of uvicorn and Django's
request logs would then keep it. `RedactSecrets` rewrites such values before any
handler sees the record; `install()` puts it on the server and request loggers.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:token|access_token|api_key|apikey|auth|key|password|sessionid)=)[^&\s\"' ]*")
_HEADER_SECRET = re.compile(r"(?i)\b((?:token|bearer)\s+)[A-Za-z0-9._~+/=-]{16,}")
_SUBPROTOCOL_SECRET = re.compile(r"(?i)\b(token\.)[A-Za-z0-9._~+/=-]{16,}")

LOGGERS = ("uvicorn.access", "uvicorn.error", "django.request", "django.server", "django.channels.server", "daphne")


def redact(text: str) -> str:
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    text = _HEADER_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return _SUBPROTOCOL_SECRET.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Redacts the message and each string argument, keeping the arguments' shape
    (uvicorn's access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install() -> None:
    """Logger-level filters: they hold whatever handlers the server configured (uvicorn sets its own)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())

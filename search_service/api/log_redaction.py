"""Secrets out of the access log: a client that puts its API key in the query string (`?api_key=plq_…`) is
refused (401), but uvicorn's access line wrote the whole, still valid key."""

from __future__ import annotations

import logging
import re

# Our API keys and webhook secrets, whatever carries them (a query parameter, a path segment).
_SECRET = re.compile(r"\b(plq_|whsec_)[A-Za-z0-9_\-+/=%]+")


def redacted(text: str) -> str:
    return _SECRET.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        return True


def redact_access_log() -> None:
    """Once a process: uvicorn's logging set-up replaces the logger's handlers, not its filters."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())

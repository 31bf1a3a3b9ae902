"""The access log's client text made safe: secrets out (a client that puts its API key in the query string,
`?api_key=plq_…`, is refused (401), but uvicorn's access line wrote the whole, still valid key) and control
characters escaped (a decoded `%0a` ended the line and forged the next)."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from search_service.controlchars import escape_control_chars

# Our API keys (URL-safe base64) and webhook secrets (base64), wherever they stand: after `=`, `%20` (`Bearer%20plq_…`)
# or any letter; up to the next character neither uses (a `/` ends a key: the path after it stays readable). The
# query string is logged as sent, so `_` and the key's characters may come percent-encoded (`plq%5F…`).
_SECRET = re.compile(
    r"(?i:(plq))(?:_|%5[Ff])(?:[A-Za-z0-9_\-]|%[0-9A-Fa-f]{2})+|(?i:(whsec))(?:_|%5[Ff])[A-Za-z0-9+/=%]+"
)


def _redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)).lower() + "_[redacted]", text)


def redacted(text: str) -> str:
    """`text` without keys or secrets. A client that percent-encodes every byte (`%70%6C%71%5F…`, or twice:
    `%2570…`) hides the prefix from the pattern: where the decoded text holds one, the line is logged decoded."""
    shown = _redact(text)
    if "%" not in shown:
        return shown
    decoded = shown
    for _ in range(3):  # encoded at most three times over
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
    return _redact(decoded) if _SECRET.search(decoded) else shown


def loggable(text: str) -> str:
    """`text` redacted, then its control characters escaped (the redaction may decode them)."""
    return escape_control_chars(redacted(text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(loggable(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = loggable(record.msg)
        return True


def redact_access_log() -> None:
    """Once a process: uvicorn's logging set-up replaces the logger's handlers, not its filters."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())

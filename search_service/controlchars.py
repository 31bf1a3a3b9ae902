"""Text from outside (a request's path, a file name, a receiver's or a vendor's error) as a log line or the CLI
shows it: its control characters escaped, so it cannot end the line and forge the next, add a column, make the log
binary to grep (a NUL) or drive the reader's terminal (ESC sequences)."""

from __future__ import annotations

import re

# C0 (TAB, LF and CR included), DEL, C1 (NEL, CSI) and Unicode's line and paragraph separators.
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control_chars(text: str) -> str:
    """`text` with each control character as Python writes it in a literal: `\\n`, `\\t`, `\\x00`, `\\x1b`."""
    return _CONTROL_CHARS.sub(lambda found: repr(found.group())[1:-1], text)

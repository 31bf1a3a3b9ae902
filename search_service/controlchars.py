"""Text from outside (a request's path, a file name, a receiver's or a vendor's error) as a log line or the CLI
shows it: its control characters escaped, so it cannot end the line and forge the next, add a column, make the log
binary to grep (a NUL), drive the reader's terminal (ESC sequences) or reorder what it shows (a right-to-left
override makes `photo\u202egpj.exe` look like `photoexe.jpg`)."""

from __future__ import annotations

import re

# C0 (TAB, LF and CR included), DEL, C1 (NEL, CSI), Unicode's line and paragraph separators and its bidi format
# characters (Unicode's Bidi_Control: the Arabic letter mark U+061C, LRM, RLM, the embeddings and overrides
# U+202A-U+202E, the isolates U+2066-U+2069).
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def escape_control_chars(text: str) -> str:
    """`text` with each control character as Python writes it in a literal: `\\n`, `\\x00`, `\\x1b`, `\\u202e`."""
    return _CONTROL_CHARS.sub(lambda found: repr(found.group())[1:-1], text)

"""An error in one line, for messages that say what failed without a traceback."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The error's first line of text, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

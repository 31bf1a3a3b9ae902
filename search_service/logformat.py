"""One log format for every process (the API's workers, serve's supervisor, the worker's jobs, uvicorn): one line
an event, its time and level first, so WARNING and ERROR lines can be grepped and placed in an incident's window,
then the process id: `serve --workers N`'s workers log the same lines, and only it tells them apart."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging() -> None:
    """A process's log on stderr in LOG_FORMAT (a no-op where the root logger has a handler already)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)

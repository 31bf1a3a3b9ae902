"""A sync's vendor pages on their way to the store: fetched ahead on a thread, announced as read, merged into
batches. The cursor travels with its page: it is saved only with the stored rows (connectors/sync.py)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from search_service.ingest.connectors.common import Page


def prefetched(pages: Iterator[Page], depth: int = 2, halt: threading.Event | None = None) -> Iterator[Page]:
    """The vendor's next pages are fetched and mapped on a thread while this one stores the current page (the store
    waits on PostgreSQL with the GIL released). The cursor is still saved only with its stored page. A set `halt`
    ends the pages while the thread still reads (a first sync's stock pass takes minutes before its first page)."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        slots.put(("page", page), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(("error", exc))

    worker = threading.Thread(target=produce, name="plinqy-sync-fetch", daemon=True)
    worker.start()
    try:
        while True:
            try:
                what, item = slots.get(timeout=0.2)
            except queue.Empty:
                if halt is not None and halt.is_set():
                    return
                continue
            if what == "end":
                return
            if what == "error":
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=1 if halt is not None and halt.is_set() else 30)  # halted: its read in flight is dropped


def announced(pages: Iterator[Page], on_read: Callable[[Page], object] | None) -> Iterator[Page]:
    """Each vendor page as it is read (a progress bar moves with the vendor, not with the stored batches)."""
    for page in pages:
        if on_read is not None:
            on_read(page)
        yield page


def coalesced(pages: Iterator[Page], max_rows: int, max_age_s: float = 5.0) -> Iterator[Page]:
    """Consecutive pages merged up to `max_rows` rows (or `max_age_s`): one raw batch and one commit for several
    vendor pages. The cursor is the last merged page's, and what is held is handed over before a vendor error is
    raised, so the cursor never runs ahead of the stored rows and no stored progress is lost."""
    held: Page | None = None
    since = 0.0
    try:
        for page in pages:
            if held is None:
                held, since = (
                    Page(page.kind, list(page.rows), page.cursor, page.read, list(page.links), page.shifted),
                    time.monotonic(),
                )
            else:
                held.rows += page.rows
                held.links += page.links
                held.cursor, held.read = page.cursor, held.read + page.read
                held.shifted = held.shifted or page.shifted
            if len(held.rows) >= max_rows or time.monotonic() - since >= max_age_s:
                yield held
                held = None
    except Exception:
        if held is not None:
            yield held
        raise
    if held is not None:
        yield held

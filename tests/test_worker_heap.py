"""Each background job starts its loop with the start-up heap frozen (search_service.worker.settle_heap).

Without it every full collection of a job walked the whole start-up heap again: a third of the import job's CPU a
row in a 100k-row import (perf). The jobs' loops are replaced by recorders of what the collector holds frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet

from search_service import worker
from search_service.settings import Settings


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def frozen_when_called(monkeypatch: pytest.MonkeyPatch, module: str, name: str, result: Any) -> list[int]:
    seen: list[int] = []

    def record(*_args: Any, **_kwargs: Any) -> Any:
        seen.append(gc.get_freeze_count())
        return result

    monkeypatch.setattr(f"{module}.{name}", record)
    return seen


@pytest.mark.parametrize(
    ("job", "module", "name", "result"),
    [
        ("import", "search_service.ingest.worker", "run_import_worker", 0),
        ("events", "search_service.events.dispatcher", "run_dispatcher", None),
        ("sync", "search_service.ingest.connectors.job", "run_sync_loop", SimpleNamespace(synced=0, failed=0)),
    ],
)
def test_a_job_runs_its_loop_with_the_start_up_heap_frozen(
    monkeypatch: pytest.MonkeyPatch, job: str, module: str, name: str, result: Any
) -> None:
    seen = frozen_when_called(monkeypatch, module, name, result)
    monkeypatch.setattr("signal.signal", lambda *_args: None)  # the sync job's handlers would outlive the test
    assert gc.get_freeze_count() == 0
    settings = Settings.from_env({"PLINQY_SECRET_KEY": Fernet.generate_key().decode()})
    ctx = worker.JobContext(settings, "postgresql://unused", drain=True)
    worker.JOBS[job].run(ctx)
    assert len(seen) == 1
    assert seen[0] > 1000  # the modules imported so far, at least

"""The short chaos drill (benchmarks/chaos.py; `make soak` runs the full one): dispatcher processes SIGKILLed at
random and a database connection terminated, yet every event arrives, exactly once after deduplication."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos import ChaosPlan, run_chaos


@pytest.mark.slow
def test_deliveries_survive_sigkill_and_terminated_connections(fresh_db_url: str, tmp_path: Path) -> None:
    plan = ChaosPlan(workers=3, deliveries=300, kill_every_s=(0.8, 1.2), chaos_s=4.0, timeout_s=90.0)
    report = run_chaos(fresh_db_url, plan, tmp_path)
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(tmp_path.glob("*.log"))[-3:])
    assert report.kills >= 2 and report.terminations == 1, report
    assert report.events == 300 and report.missing == 0 and report.unique_delivered == 300, (report, logs)
    assert report.bad_signatures == 0
    assert report.sigterm_exit_codes == [0, 0, 0], (report, logs)
    assert report.locked_after == 0 and report.connections_after == 0, report
    assert report.received == report.unique_delivered + report.duplicates  # every extra one is a redelivery
    assert report.passed

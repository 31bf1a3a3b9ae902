"""`plinqy-search sync` as a store owner runs it: what it answers (exit code, last line) when a full sync's removal is
refused, when it is interrupted, when the vendor refuses the credentials or asked to wait; `connections list` too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.connector_helpers import map_batches, sync
from tests.pos_fakes.vendors import LightspeedRFake
from tests.test_connector_sync import ITEMS, cli, r_connection, state


@pytest.fixture
def r_fake() -> Iterator[LightspeedRFake]:
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    for item in ITEMS:
        fake.add(item)
    fake.clock.now += timedelta(minutes=2)  # the catalogue stamped before a poll's overlap (PASS_OVERLAP_S)
    yield fake
    fake.server.close()


def active_skus(db: psycopg.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT sku FROM store_product WHERE is_active").fetchall()}


def suggested_command(text: str) -> list[str]:
    """The last `plinqy-search ...` a message suggests, as arguments."""
    return re.findall(r"`plinqy-search ([^`]+)`", text)[-1].split()


def test_a_refused_full_sync_removal_fails_and_says_how_to_force_it(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """The "more than half" guard refused the removal, yet `sync --full` said "synced" and exited 0; now it exits 1
    with a last line saying nothing was removed, why, and the flag that removes them when they are really gone."""
    cid = r_connection(db, r_fake, page_size=100)
    sync(db, cid)
    map_batches(db)
    r_fake.items.clear()  # every item gone at the vendor (or a glitch answering nothing)
    out = cli(fresh_db_url, "sync", str(cid), "--full")
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1, out.stderr
    assert "5 of 5 listings no longer at the vendor; not removed: more than half" in last, last
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    assert "failures=1" in listed and "--allow-mass-removal" in listed
    map_batches(db)
    assert len(active_skus(db)) == 5
    assert cli(fresh_db_url, "sync", str(cid), "--allow-mass-removal").returncode == 2  # only with --full
    forced = cli(fresh_db_url, *suggested_command(last))
    assert forced.returncode == 0 and "5 listing(s) gone at the vendor removed" in forced.stdout, forced.stderr
    map_batches(db)
    assert active_skus(db) == set()
    assert state(db, cid)[1] == 0

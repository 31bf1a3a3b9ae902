"""A big batch mapped in lanes: its pending rows split into contiguous row ranges, mapped at once on their own
connections, each range chunk by chunk in fenced transactions (sql/lanes.sql says how they are fenced, and why
only a batch whose rows are independent: no SKU and no GTIN twice).

The caller maps the batch's first chunk as always (it marks the duplicates, and the statistics are refreshed after
it), then `map_in_lanes`; whatever the lanes leave pending (a lane that failed, a stop) its usual chunk loop maps
next, and completes the batch. A lane that fails (a deadlock, a conflict nobody foresaw) rolls its chunk back and
stops: nothing is lost, the rows stay pending. A batch taken over by another worker (our lease lapsed) stops every
lane (LeaseLost).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from search_service.db.faults import connect
from search_service.db.sql import statement
from search_service.ingest.config import IngestConfig
from search_service.ingest.mapping import apply_rows
from search_service.ingest.pipeline import ChunkCounts, LeaseLost, refresh_statistics, save_results
from search_service.ingest.raw_rows import by_program

log = logging.getLogger("plinqy.ingest")

MIN_ROWS_PER_LANE = 2  # chunks: a lane gets at least this many, else the batch is mapped as it always was
_INT_MAX = 2**31 - 1
_decode = msgspec.json.Decoder().decode
# What ends a lane but not the batch: its chunk rolled back, its rows left pending for the caller's chunk loop.
LANE_FAULTS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True)
class Lanes:
    """The row ranges (after, upto] of the lanes."""

    ranges: list[tuple[int, int]]


async def _fetch(conn: Any, name: str, **params: Any) -> list[Any]:
    stmt = statement("ingest/lanes", name)
    return list(await conn.fetch(stmt.sql, *stmt.bind(**params)))


async def plan_lanes(conn: Any, batch_id: UUID, lanes: int, chunk_rows: int) -> Lanes | None:
    """The lanes for the batch's pending rows, or None: one lane (asked for, or too few rows) or rows that depend
    on each other (a SKU or a GTIN twice: mapped in order, by one mapper)."""
    if lanes < 2:
        return None
    plan = (await _fetch(conn, "lanes_plan", batch_id=batch_id, lanes=lanes))[0]
    if plan["pending"] < lanes * chunk_rows * MIN_ROWS_PER_LANE or not plan["independent"]:
        return None
    ends = [0, *plan["lane_ends"], _INT_MAX]
    return Lanes([(ends[k], ends[k + 1]) for k in range(lanes)])


async def map_lane_chunk(
    conn: Any, batch_id: UUID, worker_id: str, lane: tuple[int, int], limit: int, lease_s: float
) -> tuple[ChunkCounts, bool]:
    """Map the lane's next `limit` pending rows in one transaction. Returns the counts and whether the lane is done."""
    async with conn.transaction():
        fenced = await _fetch(conn, "lane_fence", batch_id=batch_id, worker_id=worker_id)
        if not fenced:
            raise LeaseLost(str(batch_id))
        store_id, currency = fenced[0]["store_id"], fenced[0]["currency"].strip()
        after, upto = lane
        pending = await _fetch(conn, "lane_rows", batch_id=batch_id, after=after, upto=upto, limit=limit)
        rows = [(r["id"], _decode(r["payload"])) for r in pending]
        results = await apply_rows(conn, store_id, currency, rows, store_active=fenced[0]["store_active"],
                                   programs=by_program(rows, fenced[0]["source"]))  # fmt: skip
        counts = await save_results(conn, batch_id, worker_id, lease_s, results, last=False)
    return counts, len(pending) < limit


@dataclass
class LaneRun:
    """One batch's lanes: what they map, and what the caller hears between chunks."""

    dsn: str
    batch_id: UUID
    worker_id: str
    config: IngestConfig
    stopping: Callable[[], bool] = lambda: False  # a graceful stop: the lanes end after their chunk in hand
    after_chunk: Callable[[], Awaitable[None]] | None = None  # progress, or a test's hold: lanes call it at once
    chunks: int = 1  # the batch's chunks mapped so far (the caller's first one): statistics are refreshed by it
    mapped: ChunkCounts = field(default_factory=ChunkCounts)  # the lanes' committed rows, a lane's error too


async def map_in_lanes(conn: Any, run: LaneRun) -> ChunkCounts | None:
    """Map the batch's pending rows in lanes, each on a connection of its own; None when the batch is not one for
    lanes (plan_lanes). Raises LeaseLost when the batch was taken over."""
    lanes = await plan_lanes(conn, run.batch_id, run.config.lanes, run.config.batch_chunk_rows)
    if lanes is None:
        return None
    conns = await _connect(run, len(lanes.ranges))
    if conns is None:
        return None
    log.info(json.dumps({"event": "lanes", "batch": str(run.batch_id), "lanes": len(lanes.ranges)}))
    lost = asyncio.Event()
    try:
        done = await asyncio.gather(
            *(_lane(c, lane, run, lost) for c, lane in zip(conns, lanes.ranges, strict=True)), return_exceptions=True
        )
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    counts = ChunkCounts()
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
        counts.add(outcome)
    return counts


async def _connect(run: LaneRun, lanes: int) -> list[Any] | None:
    """A connection per lane, or None (the batch is then mapped by the caller's loop alone) when the server refuses
    one (max_connections, most likely)."""
    conns: list[Any] = []
    try:
        for k in range(lanes):
            name = f"{run.worker_id[:50]}/lane{k}"
            settings = {"application_name": name, **run.config.mapping_session()}
            conns.append(await connect(run.dsn, server_settings=settings))
    except LANE_FAULTS as exc:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        log.warning(json.dumps({"event": "lanes_unavailable", "batch": str(run.batch_id),
                                "error": f"{type(exc).__name__}: {exc}"[:300]}))  # fmt: skip
        return None
    return conns


async def _lane(conn: Any, lane: tuple[int, int], run: LaneRun, lost: asyncio.Event) -> ChunkCounts:
    counts, finished = ChunkCounts(), False
    cfg = run.config
    while not finished and not run.stopping() and not lost.is_set():
        try:
            chunk, finished = await map_lane_chunk(
                conn, run.batch_id, run.worker_id, lane, cfg.batch_chunk_rows, cfg.lease_s
            )
            counts.add(chunk)
            run.mapped.add(chunk)
            run.chunks += 1
            if not finished:
                await refresh_statistics(conn, run.chunks, cfg.batch_chunk_rows)
        except LeaseLost:
            lost.set()
            raise
        except LANE_FAULTS as exc:
            log.warning(json.dumps({"event": "lane_failed", "batch": str(run.batch_id), "lane": list(lane),
                                    "error": f"{type(exc).__name__}: {exc}"[:300]}))  # fmt: skip
            return counts
        if run.after_chunk is not None:
            await run.after_chunk()
    return counts

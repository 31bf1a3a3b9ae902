"""The webhook dispatcher: claims due deliveries, sends them concurrently, records the results fenced on its lease.

Many dispatchers on many hosts share the queue (SKIP LOCKED claims, leases). Each runs one asyncio loop with up to
`concurrency` sends in flight, at most about `per_webhook` of them to one subscription, so a slow or dead receiver
(each send bounded by the 10 s timeout) holds its own share and never the others'. A NOTIFY from the outbox's
fan-out trigger wakes idle dispatchers at once; the poll interval bounds a lost one and picks up retries.

A dispatcher killed mid-send loses nothing: its leases run out and the rows are due again (at least once; the
receiver deduplicates on webhook-id). A lost database connection is re-opened; results not yet written stay in
hand and are written on the new connection (still fenced). SIGTERM/SIGINT: no new claims, the sends in flight
finish (≤ the timeout), their results are written, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from search_service.db.faults import CONNECTION_LOST, Outage, connect  # InternalClientError too: see db/faults.py
from search_service.db.secretbox import SecretBox, SecretBoxError
from search_service.db.sql import statement
from search_service.events import delivery, policy, ssrf
from search_service.events.config import EventsConfig
from search_service.events.subscriptions import disable_subscription
from search_service.events.transport import Clients
from search_service.events.webhook_url import url_host

log = logging.getLogger("plinqy.events")
logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would cost more than the request
CHANNEL = "webhook_delivery"
LINGER_S = 0.01
# A delivery whose secret this key cannot open waits this long, uncounted (a drain does not wait for it: see
# _drained); the key fixed and the dispatcher restarted, it goes out then.
HELD_S = 120.0


def make_dispatcher_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _q(name: str) -> Any:
    return statement("events/dispatch", name)


@dataclass
class Totals:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    held: int = 0
    lost_lease: int = 0


@dataclass
class _Result:
    delivery_id: int
    webhook_id: UUID
    decision: policy.Decision
    status_code: int | None
    error: str | None
    url: str = ""
    attempts: int = 0
    sent: bool = True  # false: its subscription was disabled (a held one is not sent either: see its outcome)
    previous_attempt: datetime | None = None  # last_attempt_at before the claim: a held one gets it back


@dataclass
class _State:
    inflight: dict[asyncio.Task[None], UUID] = field(default_factory=dict)
    results: list[_Result] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        dsn: str,
        config: EventsConfig,
        box: SecretBox,
        *,
        resolver: ssrf.Resolver = ssrf.system_resolver,
        dispatcher_id: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.config = config
        self.signers = delivery.Signers(box)
        self.resolver = ssrf.CachingResolver(resolver, config.dns_ttl_s)
        self.id = dispatcher_id or make_dispatcher_id()
        self.stopping = False
        self.totals = Totals()
        self._wake = asyncio.Event()
        self._all_done = asyncio.Event()  # set when the last send in flight finishes
        self._state = _State()
        self._rng = random.Random()
        self._reconnect_delay = 0.2
        self._outage = Outage(log, dispatcher=self.id)
        self._connecting = False
        self._unsignable: set[UUID] = set()  # subscriptions whose secret this key does not open

    def request_stop(self) -> None:
        self.stopping = True
        self._wake.set()
        self._all_done.set()

    async def run(self, *, drain: bool = False) -> Totals:
        """Until stopped (or, with drain, until nothing is left to attempt). Rides out a lost database."""
        clients = Clients(self.config.timeout_s, self.config.per_webhook)
        try:
            try:
                await self._run_reconnecting(clients, drain)
            except Exception:
                # A crash still writes what was sent: lost, those results meant sending it all again a lease later.
                await self._finish_inflight()
                await self._final_flush()
                raise
            await self._finish_inflight()
            await self._final_flush()
        finally:
            await clients.aclose()
        log.info(json.dumps({"event": "stopped", "dispatcher": self.id, **vars(self.totals)}))
        return self.totals

    async def _run_reconnecting(self, clients: Clients, drain: bool) -> None:
        while not self.stopping:
            try:
                if await self._run_connected(clients, drain):
                    return
            except CONNECTION_LOST as exc:
                # A drain that cannot connect at all says so; a connection lost while working is re-opened.
                unreachable = not isinstance(exc, asyncpg.AdminShutdownError | asyncpg.PostgresConnectionError)
                if drain and self._connecting and unreachable:
                    raise
                self._outage.lost(exc)
                await self._sleep(self._reconnect_delay)
                self._reconnect_delay = min(self._reconnect_delay * 2, 10.0)

    async def _run_connected(self, clients: Clients, drain: bool) -> bool:
        self._connecting = True
        name = f"plinqy-events {self.id}"[:63]
        conn = await connect(self.dsn, server_settings={"application_name": name})
        self._connecting = False
        self._reconnect_delay = 0.2  # the pause grows while the server stays away, not over the process's life
        self._outage.connected()
        try:
            await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
            while not self.stopping:
                await self._flush(conn)
                # A claim takes all it may (free slots, per-subscription caps): the next one waits for a wake.
                claimed = await self._claim(conn, clients)
                if not claimed and drain and not self._state.inflight and await self._drained(conn):
                    return True
                await self._wait()
            return True
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    async def _drained(self, conn: asyncpg.Connection) -> bool:
        stmt = _q("unfinished_count")
        row = await conn.fetchrow(stmt.sql, *stmt.bind(unsignable=list(self._unsignable)))
        count, due_in = (row[0], row[1]) if row is not None else (0, None)
        return count == 0 or (due_in is not None and float(due_in) > 60.0)

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval_s)
        # Let the sends finishing about now finish too: one flush and one claim then serve many of them (a round
        # trip per finished send cost more than the sends under load). Adds at most LINGER_S to a first attempt;
        # ends as soon as nothing is in flight (idling the rest of it would cap a fast receiver's rate).
        if self._state.inflight and not self.stopping:
            self._all_done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_done.wait(), timeout=LINGER_S)
        self._wake.clear()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    # -- claiming and sending ---------------------------------------------------------------------------
    async def _claim(self, conn: asyncpg.Connection, clients: Clients) -> int:
        free = self.config.concurrency - len(self._state.inflight)
        if free <= 0 or self.stopping:
            return 0
        per_webhook: dict[UUID, int] = {}
        for webhook_id in self._state.inflight.values():
            per_webhook[webhook_id] = per_webhook.get(webhook_id, 0) + 1
        busy = [w for w, n in per_webhook.items() if n >= self.config.per_webhook]
        stmt = _q("claim_deliveries")
        rows = await conn.fetch(
            stmt.sql,
            *stmt.bind(
                worker_id=self.id,
                batch_size=min(free, 500),
                per_webhook=self.config.per_webhook,
                busy=busy,
                lease_s=self.config.lease_s,
            ),
        )
        for row in rows:
            task = asyncio.create_task(self._deliver(clients, row))
            self._state.inflight[task] = row["webhook_id"]
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._state.inflight.pop(task, None)
        self._wake.set()
        if not self._state.inflight:
            self._all_done.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task crashed", exc_info=task.exception())

    async def _deliver(self, clients: Clients, row: asyncpg.Record) -> None:
        if not row["is_active"]:  # not sent: the claim counted no attempt, and the last answer's code stays
            reason = f"subscription disabled: {row['disabled_reason']}"
            self._record(row, policy.Decision("failed"), row["last_status_code"], reason, sent=False)
            return
        body = delivery.message_body(row["type"], row["created_at"], row["payload"])
        try:
            signer = self.signers.get(row["secret"])
            previous = self.signers.previous(row["previous_secret"], row["webhook_id"])  # None: it does not open
            headers = delivery.signed_headers(signer, row["message_id"], body, previous=previous)
        except SecretBoxError as exc:  # the current secret under another key: held until the key is fixed, not failed
            self._hold_unsigned(row, exc)
            return
        except Exception as exc:  # a stored secret that is no signing secret: retrying cannot help
            self._record(row, policy.Decision("failed"), None, f"cannot sign: {exc}")
            return
        cfg = self.config
        result = await delivery.attempt(
            clients.get(row["webhook_id"]), row["url"], headers, body, cfg.allow_hosts, self.resolver
        )
        decision = policy.decide(
            row["attempts"], result.status_code, result.retry_after, cfg.retry_schedule, cfg.jitter, self._rng
        )
        self._record(row, decision, result.status_code, result.error)

    def _hold_unsigned(self, row: asyncpg.Record, exc: SecretBoxError) -> None:
        """Not sent, no attempt counted, due again in HELD_S; said once a subscription (a line a delivery would
        flood the log)."""
        if row["webhook_id"] not in self._unsignable:
            self._unsignable.add(row["webhook_id"])
            log.error(json.dumps({"event": "delivery_held", "webhook": str(row["webhook_id"]),
                                  "error": f"cannot sign: {exc}", "retry_in_s": HELD_S,
                                  "fix": "set PLINQY_SECRET_KEY_FILE (or PLINQY_SECRET_KEY) to the key the secret "
                                         "was stored with and restart"}))  # fmt: skip
        self._record(row, policy.Decision("held", HELD_S), None, f"cannot sign: {exc}")

    def _record(
        self, row: asyncpg.Record, decision: policy.Decision, code: int | None, error: str | None, sent: bool = True
    ) -> None:
        result = _Result(row["id"], row["webhook_id"], decision, code, error, row["url"], row["attempts"], sent,
                         row["previous_attempt_at"])  # fmt: skip
        self._state.results.append(result)

    # -- results --------------------------------------------------------------------------------------------
    async def _flush(self, conn: asyncpg.Connection) -> None:
        """Write the results in hand: one fenced statement, then the subscriptions' health. Results that sends
        finish meanwhile wait for the next flush; after a failed write these go back in hand."""
        results, self._state.results = self._state.results, []
        if not results:
            return
        try:
            try:
                written = await self._write(conn, results)
            except asyncpg.DataError:  # a value the database refuses: it alone must not lose the others
                written = await self._write_each(conn, results)
        except BaseException:
            self._state.results[:0] = results
            raise
        for r in results:
            if r.delivery_id in written:
                setattr(self.totals, r.decision.outcome, getattr(self.totals, r.decision.outcome) + 1)
            else:
                self.totals.lost_lease += 1
        self._log_given_up([r for r in results if r.delivery_id in written])
        await self._note_health(conn, [r for r in results if r.delivery_id in written])

    async def _write(self, conn: asyncpg.Connection, results: list[_Result]) -> set[int]:
        """One fenced statement: the ids of the rows it changed."""
        stmt = _q("record_results")
        args = stmt.bind(
            worker_id=self.id,
            ids=[r.delivery_id for r in results],
            outcomes=[r.decision.outcome for r in results],
            delays=[r.decision.delay_s for r in results],
            status_codes=[r.status_code for r in results],
            errors=[r.error for r in results],
            urls=[r.url if r.sent and r.decision.outcome != "held" else "" for r in results],
            previous_attempts=[r.previous_attempt for r in results],
        )
        return {r["id"] for r in await conn.fetch(stmt.sql, *args)}

    async def _write_each(self, conn: asyncpg.Connection, results: list[_Result]) -> set[int]:
        """A result at a time, so one the database refuses costs only itself: that one is written as failed, saying
        why (kept in hand, it crashed every flush and the batch was sent again at each restart)."""
        written: set[int] = set()
        for r in results:
            try:
                written |= await self._write(conn, [r])
            except asyncpg.DataError as exc:
                r.decision, r.error = policy.Decision("failed"), f"its result could not be stored: {exc}"[:500]
                written |= await self._write(conn, [r])
        return written

    @staticmethod
    def _log_given_up(results: list[_Result]) -> None:
        """A delivery failed for good: one line each (a disabled subscription's were said by subscription_disabled)."""
        for r in results:
            if r.decision.outcome == "failed" and r.sent:
                log.warning(json.dumps({"event": "delivery_failed", "webhook": str(r.webhook_id),
                                        "delivery": r.delivery_id, "host": url_host(r.url), "attempts": r.attempts,
                                        "status_code": r.status_code, "error": (r.error or "")[:300]}))  # fmt: skip

    async def _note_health(self, conn: asyncpg.Connection, results: list[_Result]) -> None:
        failed = {  # a held delivery was not sent: it says nothing of the receiver
            r.webhook_id for r in results if r.decision.outcome in ("retrying", "failed") and r.sent
        }
        succeeded = {r.webhook_id for r in results if r.decision.outcome == "delivered"}
        for webhook_id in sorted(failed - succeeded):
            stmt = _q("subscription_failed")
            row = await conn.fetchrow(
                stmt.sql, *stmt.bind(webhook_id=webhook_id, disable_after_s=self.config.disable_after_s)
            )
            if row is not None and not row["is_active"]:
                log.warning(json.dumps({"event": "subscription_disabled", "webhook": str(webhook_id),
                                        "reason": row["disabled_reason"]}))  # fmt: skip
        for webhook_id in sorted(succeeded):
            stmt = _q("subscription_succeeded")
            await conn.execute(stmt.sql, *stmt.bind(webhook_id=webhook_id))
        for r in results:
            if r.decision.disable_reason:
                await disable_subscription(conn, r.webhook_id, r.decision.disable_reason)

    async def _finish_inflight(self) -> None:
        tasks = list(self._state.inflight)
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.timeout_s + 5)

    async def _final_flush(self) -> None:
        """Results still in hand at the stop: written on a fresh connection (a few tries)."""
        for _ in range(3):
            if not self._state.results:
                return
            try:
                conn = await connect(self.dsn)
                try:
                    await self._flush(conn)
                finally:
                    await conn.close()
            except CONNECTION_LOST as exc:
                log.warning(json.dumps({"event": "final_flush_failed", "error": str(exc)[:300]}))
                await asyncio.sleep(0.5)


def run_dispatcher(
    dsn: str,
    config: EventsConfig,
    box: SecretBox,
    *,
    drain: bool = False,
    on_start: Callable[[str], None] | None = None,
) -> Totals:
    """Run one dispatcher in this process until SIGTERM/SIGINT (or drained)."""

    async def main() -> Totals:
        dispatcher = Dispatcher(dsn, config, box)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, dispatcher.request_stop)
        if on_start:
            on_start(dispatcher.id)
        return await dispatcher.run(drain=drain)

    return asyncio.run(main())

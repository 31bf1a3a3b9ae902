"""`plinqy-search webhooks ...` (subscriptions, deliveries, replay, the dispatcher) and `plinqy-search prune`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import click

from search_service.cli.common import (
    DURATION_UNITS,
    Duration,
    UsageMistake,
    UserFacingError,
    WholeNumber,
    connect,
    current_database_url,
    database_url,
    echo,
    exit_on_sigterm_while_starting,
    named_as_typed,
    option_mistake,
    progress_bar,
    refuse_a_wrong_secret_key,
    shown_once,
    user_errors,
)
from search_service.db import faults
from search_service.logformat import configure_logging
from search_service.settings import Settings
from search_service.timetext import utc_text

T = TypeVar("T")


def _with_conn(settings: Settings, work: Callable[[Any], Awaitable[T]], show: Callable[[T], None] | None = None) -> T:
    """Run `work(conn)` on one asyncpg connection; the events package's errors become one-line errors. `show`
    prints its result in the same transaction: a secret that could not be printed is rolled back (shown_once)."""
    from search_service.events.subscriptions import SubscriptionError, SubscriptionValueError

    url = database_url(settings)

    async def main() -> T:
        conn = await faults.connect(url)
        try:
            if show is None:
                return await work(conn)
            async with conn.transaction():
                result = await work(conn)
                show(result)
                return result
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except SubscriptionValueError as exc:  # an option given wrongly: exit 2
        raise option_mistake(exc.parameter, exc.message) from None
    except SubscriptionError as exc:  # refused by the store's webhooks or the receiver's address, an unknown id
        raise UserFacingError(f"{named_as_typed(exc.parameter)}: {exc.message}") from None


@click.group()
def webhooks() -> None:
    """Outbound webhooks: subscriptions, deliveries, replay, the dispatcher."""


@webhooks.command("add")
@click.option("--store", "store_id", required=True, type=click.UUID, help="The store whose events to send.")
@click.option("--url", required=True, help="https URL of the receiver (public addresses only).")
@click.option(
    "--event",
    "--events",
    "events",
    multiple=True,
    default=("*",),
    show_default=True,
    help="An event type (repeat, or comma-separated) or '*'.",
)
@click.pass_obj
@user_errors
def webhooks_add(settings: Settings, store_id: UUID, url: str, events: tuple[str, ...]) -> None:
    """Subscribe a URL; prints the whsec_ signing secret once."""
    from search_service.events import subscriptions

    refuse_a_wrong_secret_key(settings)  # a new secret under a key that opens none of the others: never signed

    def show(created: subscriptions.Created) -> None:
        echo(f"webhook {created.subscription['id']} for store {store_id}: {created.subscription['url']}")
        echo(f"events: {', '.join(created.subscription['events'])}")
        echo("signing secret, shown only now:")
        echo(created.secret)  # the last line alone, as `keys create` and `connect webhook` print theirs

    with shown_once("no webhook was made"):
        _with_conn(
            settings,
            lambda c: subscriptions.create(
                c, settings.secret_box(), settings.events, store_id, url, _event_types(events)
            ),
            show,
        )


@webhooks.command("list")
@click.option("--store", "store_id", type=click.UUID, help="Only this store's webhooks.")
@click.pass_obj
@user_errors
def webhooks_list(settings: Settings, store_id: UUID | None) -> None:
    """Subscriptions with their state (no secrets)."""
    from search_service.events import subscriptions

    rows = _with_conn(settings, lambda c: subscriptions.list_for(c, store_id))
    if not rows:
        echo("no webhooks")
    for r in rows:
        state = "enabled" if r["is_active"] else f"disabled ({r['disabled_reason'] or 'by an operator'})"
        failing = [f"failing since {_utc(r['failing_since'])}"] if r["failing_since"] else []
        echo(r["id"], f"store={r['store_id']}", r["url"], ",".join(r["events"]), state, *failing)


def _event_types(options: tuple[str, ...]) -> list[str]:
    """`--event a --event b` or `--events a,b`: the types named."""
    return [e.strip() for value in options for e in value.split(",") if e.strip()]


@webhooks.command("update")
@click.argument("webhook_id", type=click.UUID)
@click.option("--url", help="The new https URL of the receiver (checked as at `add`).")
@click.option(
    "--event", "--events", "events", multiple=True, help="The new event types (repeat, or comma-separated) or '*'."
)
@click.pass_obj
@user_errors
def webhooks_update(settings: Settings, webhook_id: UUID, url: str | None, events: tuple[str, ...]) -> None:
    """Change a subscription's URL and/or events in place (same id, secret, numbering and queued deliveries)."""
    from search_service.events import subscriptions

    chosen = _event_types(events) if events else None
    row = _with_conn(
        settings, lambda c: subscriptions.update(c, settings.events, None, webhook_id, url=url, events=chosen)
    )
    echo(f"updated webhook {webhook_id}: {row['url']}")
    echo(f"events: {', '.join(row['events'])}")


@webhooks.command("rotate-secret")
@click.argument("webhook_id", type=click.UUID)
@click.pass_obj
@user_errors
def webhooks_rotate_secret(settings: Settings, webhook_id: UUID) -> None:
    """A new signing secret, printed once; the old one also signs until PLINQY_WEBHOOK_SECRET_GRACE_S ends."""
    from search_service.events import subscriptions

    refuse_a_wrong_secret_key(settings)

    def show(rotated: subscriptions.Rotated) -> None:
        if rotated.previous_valid_until is None:
            key = settings.secret_box().source
            echo(f"webhook {webhook_id}: the replaced secret does not open with {key} (stored under another key): "
                 "dropped; deliveries are signed with the new secret only")  # fmt: skip
        else:
            until = utc_text(rotated.previous_valid_until)
            echo(f"webhook {webhook_id}: deliveries are signed with both secrets until {until}, then the new one only")
        echo("new signing secret, shown only now:")
        echo(rotated.secret)  # the last line alone, as `add` prints it

    with shown_once("the secret was not rotated"):
        _with_conn(
            settings,
            lambda c: subscriptions.rotate_secret(c, settings.secret_box(), settings.events, None, webhook_id),
            show,
        )


@webhooks.command("remove")
@click.argument("webhook_id", type=click.UUID)
@click.pass_obj
@user_errors
def webhooks_remove(settings: Settings, webhook_id: UUID) -> None:
    """Delete a subscription and all its deliveries: queued, delivered and failed ones (none can be replayed)."""
    from search_service.events import subscriptions

    _with_conn(settings, lambda c: subscriptions.delete(c, None, webhook_id))
    echo(f"removed webhook {webhook_id}")


@webhooks.command("enable")
@click.argument("webhook_id", type=click.UUID)
@click.pass_obj
@user_errors
def webhooks_enable(settings: Settings, webhook_id: UUID) -> None:
    """Switch a disabled subscription on again (same secret and numbering); then replay what failed meanwhile."""
    from search_service.events import subscriptions

    enabled = _with_conn(settings, lambda c: subscriptions.enable(c, settings.events, None, webhook_id))
    row = enabled.subscription
    if not enabled.switched_on:
        echo(f"webhook {webhook_id} is enabled already: {row['url']}")
        return
    echo(f"enabled webhook {webhook_id}: {row['url']}")
    if enabled.failed_from is not None:
        since = utc_text(enabled.failed_from)  # to the second, floored: the first failed one is in
        n = enabled.failed
        echo(
            f"{n} failed deliver{'y' if n == 1 else 'ies'}; to send them again: "
            f"plinqy-search webhooks replay --webhook {webhook_id} --failed-only --since {since}"
        )


@webhooks.command("deliveries")
@click.option("--failed", "failed_only", is_flag=True, help="Only deliveries that failed for good.")
@click.option("--store", "store_id", type=click.UUID, help="Only this store's deliveries.")
@click.option("--limit", default=50, show_default=True, type=WholeNumber(1, 100_000))
@click.pass_obj
@user_errors
def webhooks_deliveries(settings: Settings, failed_only: bool, store_id: UUID | None, limit: int) -> None:
    """Recent deliveries, newest first: last answer, times (last attempt, next attempt or delivered) and error."""
    from search_service.events import subscriptions

    rows = _with_conn(
        settings, lambda c: subscriptions.deliveries(c, failed_only=failed_only, store_id=store_id, limit=limit)
    )
    if not rows:
        echo("no deliveries")
    for r in rows:
        code = r["last_status_code"] if r["last_status_code"] is not None else "-"
        undelivered = r["status"] != "delivered"
        error = [r["last_error"]] if r["last_error"] and undelivered else []
        # why a replay of it is refused (enable first): nothing to say of a delivered one
        sub = [f"webhook disabled: {r['disabled_reason']}"] if undelivered and not r["is_active"] else []
        echo(
            r["id"], r["status"], f"attempts={r['attempts']}", f"code={code}", *_times(r), r["type"], r["message_id"],
            r["url"], *error, *sub,
        )  # fmt: skip


def _utc(when: datetime | None) -> str:
    return "-" if when is None else utc_text(when)


def _times(row: Any) -> list[str]:
    """When it was last tried, and when it is tried next (still queued; not known while an attempt is in flight) or
    was delivered."""
    times = [f"last_attempt={_utc(row['last_attempt_at'])}"]
    if row["status"] in ("pending", "retrying"):
        times.append("next_attempt=in flight" if row["in_flight"] else f"next_attempt={_utc(row['next_attempt_at'])}")
    if row["status"] == "delivered":
        times.append(f"delivered_at={_utc(row['delivered_at'])}")
    return times


def _parse_time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
        return when if when.tzinfo is None else when.astimezone(UTC)  # in UTC, years 1-9999 (an offset overflows)
    except (ValueError, OverflowError):
        raise UsageMistake(
            f"--since {value!r}: give an ISO time between the years 1 and 9999, e.g. 2026-12-03T07:00:00+00:00"
        ) from None


class DeliveryId(click.ParamType):
    """One delivery's id, as `webhooks deliveries` lists it (click's IntRange said "'abc' is not a valid integer
    range", which told nothing of what the argument is)."""

    name = "delivery_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if not (text.isdecimal() and text.isascii()):
            many = "for many, --store ID and/or --webhook ID with --since TIME"
            self.fail(f"{value!r} is not a delivery id: give one delivery's number as `webhooks deliveries` lists it "
                      f"(a whole number from 1; {many})", param, ctx)  # fmt: skip
        if not 1 <= int(text) < 2**63:  # past the database's bigint: a traceback
            self.fail(f"{text} is not in the range of delivery ids, 1 to {2**63 - 1}", param, ctx)
        return int(text)


@webhooks.command("replay")
@click.argument("delivery_id", type=DeliveryId(), required=False)
@click.option("--store", "store_id", type=click.UUID, help="Replay this store's finished deliveries (with --since).")
@click.option("--webhook", "webhook_id", type=click.UUID, help="Only this webhook's deliveries (with --since).")
@click.option("--since", help="ISO time: deliveries of events whose timestamp (their time) is at or after it.")
@click.option("--failed-only", is_flag=True, help="Only the deliveries that failed (not the delivered ones).")
@click.pass_obj
@user_errors
def webhooks_replay(
    settings: Settings,
    delivery_id: int | None,
    store_id: UUID | None,
    webhook_id: UUID | None,
    since: str | None,
    failed_only: bool,
) -> None:
    """Send finished deliveries again (same webhook-id): DELIVERY_ID, or --store ID and/or --webhook ID with
    --since TIME (--failed-only: the failed ones only)."""
    from search_service.events import subscriptions

    bulk = store_id is not None or webhook_id is not None
    if (delivery_id is None) != bulk or bulk != (since is not None) or (failed_only and not bulk):
        raise UsageMistake(
            "give either DELIVERY_ID, or --store ID and/or --webhook ID with --since TIME (and --failed-only if wanted)"
        )
    when = _parse_time(since) if since else None
    n = _with_conn(
        settings,
        lambda c: subscriptions.replay(
            c, delivery_id=delivery_id, store_id=store_id, webhook_id=webhook_id, since=when, failed_only=failed_only
        ),
    )
    echo(f"queued {n} deliver{'y' if n == 1 else 'ies'} again")


@webhooks.command("dispatch")
@click.option("--drain", is_flag=True, help="Send until nothing is left to attempt soon, then exit.")
@click.pass_obj
@user_errors
def webhooks_dispatch(settings: Settings, drain: bool) -> None:
    """Run one webhook dispatcher (SIGTERM/SIGINT: finish the sends in flight and exit 0)."""
    exit_on_sigterm_while_starting()
    from search_service.events.dispatcher import run_dispatcher
    from search_service.worker import settle_heap

    configure_logging()
    url = current_database_url(settings)
    refuse_a_wrong_secret_key(settings)
    settle_heap()
    run_dispatcher(
        url,
        settings.events,
        settings.secret_box(),
        drain=drain,
        on_start=lambda did: echo(f"dispatcher {did} started", err=True),
    )


@click.command("prune")
@click.option(
    "--older-than",
    default="30d",
    show_default=True,
    type=Duration(),
    help=f"Age of the rows to delete, {DURATION_UNITS}: 30d, 12h.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.pass_obj
@user_errors
def prune(settings: Settings, older_than: float, dry_run: bool) -> None:
    """Delete old inventory events, listing history, index-queue rows and finished webhook records: outgoing
    events and their deliveries, delivered or failed for good (an event still pending or retrying stays)."""
    from search_service.events import prune as prune_mod

    with connect(settings) as conn:
        plan = prune_mod.plan(conn, older_than)
        before = f"older than {utc_text(plan.cutoff)}"
        if dry_run:
            for table, count in plan.counts.items():
                echo(f"would delete {count} row(s) of {table} {before}")
            return
        with progress_bar("prune", " rows", plan.total, shown=plan.total > 0) as bar:
            deleted = prune_mod.prune(conn, plan, on_batch=lambda _table, n: bar.update(n))
    for table, count in deleted.items():
        echo(f"deleted {count} row(s) of {table} {before}")

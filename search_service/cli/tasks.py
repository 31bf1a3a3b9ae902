"""`tasks`: inspect, requeue and prune the ai_task queue."""

from __future__ import annotations

import sys

import click

from search_service.cli.common import (
    DURATION_UNITS,
    Duration,
    UsageMistake,
    WholeNumber,
    connect,
    echo,
    progress_bar,
    user_errors,
)
from search_service.settings import Settings
from search_service.timetext import utc_text


@click.group()
def tasks() -> None:
    """Inspect and requeue the ai_task queue."""


@tasks.command("stats")
@click.pass_obj
@user_errors
def tasks_stats(settings: Settings) -> None:
    """Counts by status, the pending ones due and backing off, and how long the oldest due one has waited."""
    from embeddings import queue

    with connect(settings) as conn:
        stats = queue.stats(conn)
    for status, count in stats.counts.items():
        echo(f"{status:<8} {count}")
    echo(f"  due          {stats.due}")
    backoff = "" if stats.next_due_in_s is None else f" (next due in {stats.next_due_in_s:.1f}s)"
    echo(f"  backing off  {stats.backing_off}{backoff}")
    age = "-" if stats.oldest_pending_s is None else f"{stats.oldest_pending_s:.1f}s"
    echo(f"oldest pending: {age} (a due task's wait since it was queued, requeued or its backoff ended)")


@tasks.command("failed")
@click.option("--limit", default=100, show_default=True, type=WholeNumber(1, 100000))
@click.pass_obj
@user_errors
def tasks_failed(settings: Settings, limit: int) -> None:
    """Dead tasks with their last error."""
    from embeddings import queue

    with connect(settings) as conn:
        rows = queue.list_failed(conn, limit)
    if not rows:
        echo("no failed tasks")
    for task_id, product_id, attempts, max_attempts, error, _finished in rows:
        echo(task_id, f"product={product_id}", f"attempts={attempts}/{max_attempts}", error)


@tasks.command("retry")
@click.option("--all", "retry_all", is_flag=True, help="Requeue every failed task.")
@click.argument("ids", nargs=-1, type=WholeNumber(1, 2**63 - 1))
@click.pass_obj
@user_errors
def tasks_retry(settings: Settings, retry_all: bool, ids: tuple[int, ...]) -> None:
    """Requeue failed tasks: `--all` or task IDs (exit 1 when an ID given was not requeued, each one said and why)."""
    from embeddings import queue

    if retry_all == bool(ids):
        raise UsageMistake("give either --all or one or more task IDs (see `plinqy-search tasks failed`)")
    with connect(settings) as conn:
        requeued = queue.retry_failed(conn, None if retry_all else list(ids))
        left = [i for i in dict.fromkeys(ids) if i not in set(requeued)]
        statuses = queue.task_statuses(conn, left) if left else {}
    echo(f"requeued {len(requeued)} task(s)")
    for task_id in left:  # each id asked for and not requeued, and why
        status = statuses.get(task_id)
        why = "no such task" if status is None else f"it is {status}, not failed"
        if status == "failed":
            why = "its product already has a pending task, which does its work"
        echo(f"not requeued: {task_id} ({why})")
    if left:
        sys.exit(1)  # an id named and not requeued is a failed request (README: exit 1)


@tasks.command("prune")
@click.option(
    "--older-than",
    required=True,
    type=Duration(),
    help=f"Age of the done tasks to delete, {DURATION_UNITS}: 7d, 12h, 30m.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.pass_obj
@user_errors
def tasks_prune(settings: Settings, older_than: float, dry_run: bool) -> None:
    """Delete done tasks that finished longer ago than --older-than (pending, running and failed ones stay)."""
    from embeddings import queue

    with connect(settings) as conn:
        plan = queue.plan_prune(conn, older_than)
        before = f"that finished before {utc_text(plan.cutoff)}"
        if dry_run:
            echo(f"would delete {plan.count} done task(s) {before}")
            return
        with progress_bar("tasks prune", " tasks", plan.count, shown=plan.count > 0) as bar:
            deleted = queue.prune_done(conn, plan, on_batch=bar.update)
    echo(f"deleted {deleted} done task(s) {before}")

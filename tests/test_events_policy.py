"""The retry policy and the settings of the events package (pure functions)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from click.testing import CliRunner

from search_service.cli.commands import cli
from search_service.events.config import DEFAULT_RETRY_SCHEDULE, EventsConfig, EventsConfigError
from search_service.events.policy import decide, parse_retry_after
from search_service.settings import Settings, SettingsError


def test_schedule_jitter_and_the_end_of_the_schedule() -> None:
    rng = random.Random(1)
    delays = [decide(n, 500, None, DEFAULT_RETRY_SCHEDULE, 0.1, rng).delay_s for n in range(1, 10)]
    for delay, base in zip(delays, DEFAULT_RETRY_SCHEDULE[1:], strict=True):
        assert base * 0.9 <= delay <= base * 1.1
    assert len({round(d / b, 6) for d, b in zip(delays, DEFAULT_RETRY_SCHEDULE[1:], strict=True)}) > 1  # jittered
    assert decide(10, 500, None, DEFAULT_RETRY_SCHEDULE, 0.1).outcome == "failed"
    assert decide(3, None, None, DEFAULT_RETRY_SCHEDULE, 0.0).delay_s == 1800  # no answer: retried like a 5xx


def test_success_gone_redirect_and_retry_after() -> None:
    schedule = (0.0, 5.0, 300.0)
    assert decide(1, 204, None, schedule, 0.0).outcome == "delivered"
    gone = decide(1, 410, None, schedule, 0.0)
    assert gone.outcome == "failed" and gone.disable_reason and "410" in gone.disable_reason
    assert decide(1, 302, None, schedule, 0.0).outcome == "retrying"
    assert decide(1, 429, "120", schedule, 0.0).delay_s == 120
    assert decide(1, 503, "1", schedule, 0.0).delay_s == 5  # never earlier than the schedule
    assert decide(1, 500, "120", schedule, 0.0).delay_s == 5  # Retry-After counts on 429/503 only
    assert decide(1, 429, "99999999", schedule, 0.0).delay_s == 86400  # capped at a day


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


def test_settings_from_the_environment() -> None:
    config = EventsConfig.from_env(
        {"PLINQY_WEBHOOK_RETRY_SCHEDULE": "0, 1,2.5", "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1, [::1],Localhost"}
    )
    assert config.retry_schedule == (0.0, 1.0, 2.5)
    assert config.allow_hosts == frozenset({"127.0.0.1", "::1", "localhost"})
    assert EventsConfig.from_env({}).retry_schedule == DEFAULT_RETRY_SCHEDULE
    for bad in ("x", "-1", ","):
        with pytest.raises(EventsConfigError):
            EventsConfig.from_env({"PLINQY_WEBHOOK_RETRY_SCHEDULE": bad})
    with pytest.raises(EventsConfigError, match="start the schedule with 0"):  # its first value was never used
        EventsConfig.from_env({"PLINQY_WEBHOOK_RETRY_SCHEDULE": "5,300"})
    with pytest.raises(SettingsError, match="PLINQY_WEBHOOK_TIMEOUT_S"):
        Settings.from_env({"PLINQY_WEBHOOK_TIMEOUT_S": "0"})


def test_a_lease_shorter_than_a_send_is_refused_naming_both_settings() -> None:
    """A 2 s lease with a 6 s timeout was taken: a slow delivery's lease ran out mid-send and another dispatcher
    sent it again."""
    for lease, timeout in (("2", "6"), ("20", "10"), ("5", "3")):
        env = {"PLINQY_WEBHOOK_LEASE_S": lease, "PLINQY_WEBHOOK_TIMEOUT_S": timeout}
        with pytest.raises(SettingsError) as refused:
            Settings.from_env(env)
        message = str(refused.value)
        assert f"PLINQY_WEBHOOK_LEASE_S={lease} must be more than twice PLINQY_WEBHOOK_TIMEOUT_S={timeout}" in message
    env = {"PLINQY_WEBHOOK_LEASE_S": "2", "PLINQY_WEBHOOK_TIMEOUT_S": "6", "DATABASE_URL": "postgresql://nowhere/x"}
    shell = CliRunner().invoke(cli, ["webhooks", "dispatch"], env=env)
    assert shell.exit_code == 1 and len(shell.output.strip().splitlines()) == 1, shell.output
    assert "PLINQY_WEBHOOK_LEASE_S=2" in shell.output and "PLINQY_WEBHOOK_TIMEOUT_S=6" in shell.output
    assert EventsConfig.from_env({}).lease_s == 60.0  # the defaults pass (60 s against 10 s)
    assert EventsConfig.from_env({"PLINQY_WEBHOOK_LEASE_S": "7", "PLINQY_WEBHOOK_TIMEOUT_S": "3"}).lease_s == 7.0


def test_whole_number_settings_refuse_fractions_and_name_their_range_as_written() -> None:
    """`PLINQY_SYNC_HTTP_ATTEMPTS=2.7` was 2 without a word; `PLINQY_INGEST_MAX_UPLOAD_BYTES=10` said
    "10.0 is out of range 1024..17179869184.0"."""
    for name in ("PLINQY_SYNC_HTTP_ATTEMPTS", "PLINQY_WEBHOOK_CONCURRENCY", "PLINQY_INGEST_MAX_UPLOAD_BYTES"):
        with pytest.raises(SettingsError, match=f"{name}='2.7' is not an integer"):
            Settings.from_env({name: "2.7"})
    with pytest.raises(SettingsError, match=r"PLINQY_INGEST_MAX_UPLOAD_BYTES=10 is out of range 1024\.\.17179869184$"):
        Settings.from_env({"PLINQY_INGEST_MAX_UPLOAD_BYTES": "10"})
    with pytest.raises(SettingsError, match=r"PLINQY_WEBHOOK_TIMEOUT_S=0 is out of range 0.05\.\.60$"):
        Settings.from_env({"PLINQY_WEBHOOK_TIMEOUT_S": "0"})


def test_a_retry_after_of_other_digits_is_unreadable_not_a_crash() -> None:
    """`str.isdigit` holds for `²` and `³`, which float() and int() refuse: a receiver's `Retry-After: ²` raised
    in the dispatcher. Only decimal digits are seconds."""
    assert parse_retry_after("²") is None and parse_retry_after("120") == 120.0


def test_a_schedule_of_inf_nan_or_empty_items_is_refused_at_start() -> None:
    """float() took `inf`, `nan` and `1e400`, and empty items were skipped: with `0,inf` the dispatcher started and
    every delivery failed for good at its first failure (`interval out of range` when its retry was written), and
    `0,nan,5` retried at once."""
    for bad in ("0,inf", "0,nan,5", "0,1e400", "0,-inf", "0,,5", "0,5,", "0,-1", "0,3000000"):
        with pytest.raises(EventsConfigError, match="PLINQY_WEBHOOK_RETRY_SCHEDULE"):
            EventsConfig.from_env({"PLINQY_WEBHOOK_RETRY_SCHEDULE": bad})
    env = {"PLINQY_WEBHOOK_RETRY_SCHEDULE": "0,inf", "DATABASE_URL": "postgresql://nowhere/x"}
    shell = CliRunner().invoke(cli, ["webhooks", "dispatch"], env=env)
    assert shell.exit_code == 1 and len(shell.output.strip().splitlines()) == 1, shell.output
    assert "PLINQY_WEBHOOK_RETRY_SCHEDULE='0,inf'" in shell.output, shell.output
    assert EventsConfig.from_env({"PLINQY_WEBHOOK_RETRY_SCHEDULE": "0, 5 ,2592000"}).retry_schedule == (0, 5, 2592000)

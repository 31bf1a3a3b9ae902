"""Settings of the events package (webhook delivery), read from the environment once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from search_service.envconfig import ConfigError, env_float, env_int

# Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_RETRY_DELAY_S = 30 * 86400.0  # PLINQY_WEBHOOK_DISABLE_AFTER_S's longest too

EventType = Literal[
    "listing.created",
    "listing.updated",
    "listing.deleted",
    "stock.changed",
    "stock.out",
    "stock.back",
    "price.changed",
    "import.completed",
    "import.failed",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)  # the API's enum too (WebhookOut.events)
PingType = Literal["webhook.ping"]
PING_TYPE: PingType = "webhook.ping"


class EventsConfigError(ConfigError):
    """An environment variable of the events package holds a value we cannot use."""


def parse_schedule(raw: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in raw.split(","))  # an empty item is refused too, not skipped
    except ValueError:
        raise EventsConfigError(
            f"PLINQY_WEBHOOK_RETRY_SCHEDULE={raw!r}: give comma-separated seconds, e.g. 0,5,300"
        ) from None
    # float() takes inf and nan: an inf delay could not be stored, and the delivery failed at its first failure
    if not all(0 <= v <= MAX_RETRY_DELAY_S for v in values):
        raise EventsConfigError(
            f"PLINQY_WEBHOOK_RETRY_SCHEDULE={raw!r}: each delay must be a number of seconds from 0 to "
            f"{MAX_RETRY_DELAY_S:.0f} (30 days)"
        )
    if values[0] != 0:  # an event's first attempt is queued by the change's own transaction, due at once
        raise EventsConfigError(
            f"PLINQY_WEBHOOK_RETRY_SCHEDULE={raw!r}: the first attempt goes at once: start the schedule with 0"
        )
    return values


@dataclass(frozen=True)
class EventsConfig:
    # Delay before attempt n+1 is schedule[n]; after the last one the delivery is failed.
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = 0.1  # ± this fraction of each delay, so retries of one outage spread out
    allow_hosts: frozenset[str] = field(default_factory=frozenset)  # http and any address allowed (development)
    timeout_s: float = 10.0
    concurrency: int = 256  # sends in flight per dispatcher
    # Of which at most about this many to one subscription (a slow receiver's share); also each receiver's
    # connection pool size.
    per_webhook: int = 16
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    disable_after_s: float = 86400.0  # a subscription failing this long without a success is disabled
    dns_ttl_s: float = 30.0  # a dispatcher keeps a host's resolved addresses this long (checked at every delivery)
    # Active subscriptions a store may have: each is a copy of every event, so a key with webhooks:write and no cap
    # turned one listing change into hundreds of deliveries to one host.
    max_per_store: int = 25
    # After a rotation the old secret also signs each delivery this long, so receivers can switch over.
    secret_grace_s: float = 86400.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EventsConfig:
        raw_schedule = env.get("PLINQY_WEBHOOK_RETRY_SCHEDULE")
        hosts = env.get("PLINQY_WEBHOOK_ALLOW_HOSTS") or ""
        return check_lease(
            cls(
                retry_schedule=parse_schedule(raw_schedule) if raw_schedule else DEFAULT_RETRY_SCHEDULE,
                allow_hosts=frozenset(h.strip().lower().strip("[]") for h in hosts.split(",") if h.strip()),
                timeout_s=env_float(env, "PLINQY_WEBHOOK_TIMEOUT_S", 10.0, 0.05, 60.0),
                concurrency=env_int(env, "PLINQY_WEBHOOK_CONCURRENCY", 256, 1, 10_000),
                per_webhook=env_int(env, "PLINQY_WEBHOOK_PER_SUBSCRIPTION", 16, 1, 1000),
                lease_s=env_float(env, "PLINQY_WEBHOOK_LEASE_S", 60.0, 1.0, 3600.0),
                poll_interval_s=env_float(env, "PLINQY_WEBHOOK_POLL_S", 1.0, 0.01, 60.0),
                disable_after_s=env_float(env, "PLINQY_WEBHOOK_DISABLE_AFTER_S", 86400.0, 0.0, 30 * 86400.0),
                dns_ttl_s=env_float(env, "PLINQY_WEBHOOK_DNS_TTL_S", 30.0, 0.0, 3600.0),
                max_per_store=env_int(env, "PLINQY_WEBHOOK_MAX_PER_STORE", 25, 1, 10_000),
                secret_grace_s=env_float(env, "PLINQY_WEBHOOK_SECRET_GRACE_S", 86400.0, 0.0, 30 * 86400.0),
            )
        )


def check_lease(config: EventsConfig) -> EventsConfig:
    """A lease must outlast a send: a send may wait up to the timeout for a connection slot and then take the
    timeout, so the lease must be more than twice it. A shorter one ran out mid-send and another dispatcher sent
    the delivery again (a 2 s lease, a 6 s timeout: a slow delivery was sent twice)."""
    if config.lease_s <= 2 * config.timeout_s:
        raise EventsConfigError(
            f"PLINQY_WEBHOOK_LEASE_S={config.lease_s:g} must be more than twice PLINQY_WEBHOOK_TIMEOUT_S="
            f"{config.timeout_s:g} (a send may wait the timeout for a connection, then take it): a lease that runs "
            "out mid-send lets another dispatcher send the delivery again. Raise the lease or lower the timeout"
        )
    return config

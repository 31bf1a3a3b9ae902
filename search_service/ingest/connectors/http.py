"""The one outbound HTTP client of the connectors: retries, backoff, rate-limit pacing, Retry-After.

Every vendor answers overload differently (R-Series and Shopify: a leaky bucket in headers and 429; X-Series: 429
with `Retry-After` as an HTTP date; Erply: HTTP 200 with error code 1002, and a per-IP 429 without `Retry-After`
that lasts 10 s, waited as `blocked_s`). The client retries what may pass (429, 5xx, timeouts, connection errors,
a malformed page) with capped exponential backoff and jitter; a wait longer than `max_delay_s` is not slept here
but raised as `RateLimited`, so the sync records it and the scheduler comes back later instead of holding a worker.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import unquote

import httpx
import msgspec

log = logging.getLogger("plinqy.connectors")


class VendorError(Exception):
    """A vendor call failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def _origin_of(url: httpx.URL) -> str:
    """`scheme://host:port`, an IPv6 address in its brackets as a URL has it (httpx's `host` has none)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{f':{url.port}' if url.port else ''}"


class RateLimited(VendorError):
    """The vendor asks us to come back after `wait_s` seconds, longer than we sleep in place."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message, status=429, retryable=True)
        self.wait_s = wait_s


# A vendor's asked wait at most a day (Erply's quota asks an hour at most): an epoch time sent as `Retry-After`
# parked a connection for 57 years, and one past the year 9999 broke `connections list`.
MAX_VENDOR_WAIT_S = 86400.0
MAX_PAGE_BYTES = 64 << 20  # one vendor answer (a page) at most: one of 200 MB took a sync to 514 MB of memory
_MAX_PAGE = f"{MAX_PAGE_BYTES >> 20} MiB"


class PageTooLarge(Exception):
    """A vendor answer past MAX_PAGE_BYTES: not retried (the same page would come again)."""


class RetryRequest(Exception):
    """Raised by a vendor's response check to ask for a retry (optionally after `wait_s`)."""

    def __init__(self, message: str, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 15.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds ("2", "2.5") or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def bounded_wait(value: str | None) -> tuple[float | None, str]:
    """A `Retry-After`'s wait, at most MAX_VENDOR_WAIT_S, and a note for the error when it asked for more (logged:
    a vendor, or a proxy before it, that sends an absurd value is suspect)."""
    asked = parse_retry_after(value)
    if asked is None or asked <= MAX_VENDOR_WAIT_S or value is None:
        return asked, ""
    shown = repr(value.strip()[:40])
    log.warning("the vendor's Retry-After %s asks to wait %.0f s: suspicious, a day is waited", shown, asked)
    return MAX_VENDOR_WAIT_S, f" (its Retry-After {shown} is past a day, suspect: a day is waited)"


def backoff_delay(attempt: int, policy: RetryPolicy) -> float:
    """Capped exponential backoff with equal jitter: attempt 0 waits base/2..base."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2**attempt))
    return ceiling / 2 + random.random() * ceiling / 2


class BucketPacer:
    """Paces requests by a leaky bucket the vendor reports in a header ("used/size"), never a hard-coded bucket.

    R-Series: `X-LS-API-Bucket-Level` and `X-LS-API-Drip-Rate` (units per second); Shopify REST:
    `X-Shopify-Shop-Api-Call-Limit` (leaks 2 a second). When the bucket is nearly full, wait for it to drain.
    """

    def __init__(self, level_header: str, drip_header: str | None = None, default_drip: float = 1.0) -> None:
        self.level_header = level_header
        self.drip_header = drip_header
        self.default_drip = default_drip
        self.used = 0.0
        self.size = 0.0
        self.drip = default_drip
        self.seen_at = 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        level = headers.get(self.level_header)
        if level and "/" in level:
            used, _, size = level.partition("/")
            try:
                self.used, self.size = float(used), float(size)
            except ValueError:
                return
            self.seen_at = time.monotonic()
        if self.drip_header and headers.get(self.drip_header):
            try:
                self.drip = max(0.01, float(headers[self.drip_header]))
            except ValueError:
                self.drip = self.default_drip

    def wait_s(self, cost: float = 1.0, margin: float = 1.0) -> float:
        """How long to wait so that a request of `cost` leaves `margin` free in the bucket."""
        if self.size <= 0:
            return 0.0
        drained = (time.monotonic() - self.seen_at) * self.drip
        level = max(0.0, self.used - drained)
        excess = level + cost + margin - self.size
        return max(0.0, excess / self.drip)


ResponseCheck = Callable[[Any, httpx.Response], None]


class VendorHTTP:
    """A JSON client bound to one base URL (configurable: production code never assumes a host)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        policy: RetryPolicy | None = None,
        pacer: BucketPacer | None = None,
        check: ResponseCheck | None = None,
        sleep: Callable[[float], None] = time.sleep,
        blocked_s: float | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        # a 429 without Retry-After waits this (the vendor's documented block) instead of a backoff that ends inside it
        self.blocked_s = blocked_s
        self.pacer = pacer
        self.check = check
        self.sleep = sleep
        self.requests = 0
        self.retries = 0
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=dict(headers or {}), timeout=self.policy.timeout_s
        )

    @property
    def _origin(self) -> str:
        """Where the requests go (a wrong --base-url shows itself), never a path or query (they may hold tokens)."""
        return _origin_of(self.client.base_url)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> VendorHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, seconds: float, why: str) -> None:
        if seconds > self.policy.max_delay_s:
            raise RateLimited(f"{why}: the vendor asks to wait {seconds:.0f}s (the next sync waits for it)", seconds)
        self.retries += 1
        self.sleep(seconds)

    def within_base(self, link: str, page: httpx.URL | None = None) -> str:
        """A link from a vendor's answer (a next page), refused unless it lies under the base URL: the client sends
        the connection's token with every request, so a link elsewhere would hand it to another host. A relative one
        is resolved (RFC 3986) against `page`, the answer's URL, and returned absolute: it was joined onto the base
        path unchecked, and httpx's dot-segment removal then took `/../../other` (and the token) off the base path.
        Without `page` (a path of ours, a stored cursor) it is checked where the client sends it."""
        url = httpx.URL(link)
        if relative := not url.is_absolute_url:
            url = page.join(url) if page is not None else self.client.build_request("GET", url).url
        base = self.client.base_url
        same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
        # httpx sends a link's user:password as Basic auth in place of the connection's own (the error hides them)
        credentials = " (it carries a user name or password)" if url.userinfo else ""
        under = url.path.startswith(base.path.rstrip("/") + "/") and not _steps_out(url.path)
        if credentials or not same_origin or not under:
            raise VendorError(
                f"the vendor's answer links to {self._where(url)}{credentials}, outside this connection's base URL:"
                " refused"
            )
        return str(url) if relative and page is not None else link

    @staticmethod
    def _where(url: httpx.URL) -> str:
        """An address as an error names it: never its query (it may hold a token)."""
        return f"{_origin_of(url)}{url.path}"

    def next_page(self, link: str, seen: set[str], page: httpx.URL) -> str:
        """The next page's link of a pass, from the answer at `page`: checked (`within_base`, a relative one resolved
        against `page`) and new to it: a link that repeats would read the same page for ever, so the pass stops (its
        pages so far are kept; the next sync resumes)."""
        resolved = self.within_base(link, page)
        if link in seen or resolved in seen:
            raise VendorError("the vendor's next-page link repeats a page of this pass: stopped", retryable=True)
        seen.update((link, resolved))
        return resolved

    def request_json(self, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """Send, retrying what may pass; returns the decoded JSON (ints exact)."""
        self.within_base(path)
        last, asked, waited = "no attempt", None, 0.0
        for attempt in range(self.policy.attempts):
            if self.pacer is not None and (pause := self.pacer.wait_s()) > 0:
                self.sleep(min(pause, self.policy.max_delay_s))
            try:
                return self._attempt(method, path, **kwargs)
            except RetryRequest as exc:
                last, asked = str(exc), exc.wait_s
                delay = exc.wait_s if exc.wait_s is not None else backoff_delay(attempt, self.policy)
            if attempt + 1 < self.policy.attempts:
                self._wait(delay, f"{self._asked_for(method, path, kwargs)}: {last}")  # a wait too long names both
                waited += delay
        waits = f" ({waited:.1f} s waited)" if waited >= 0.05 else ""  # what a give-up cost, as a vendor block asks
        gave_up = f"gave up after {self.policy.attempts} attempts{waits}"
        message = f"{self._asked_for(method, path, kwargs)}: {gave_up}: {last}"
        if asked is not None:  # the vendor's last word was "come back then" (a quota that ran out again, say)
            raise RateLimited(message, asked)
        raise VendorError(message, retryable=True)

    def _asked_for(self, method: str, path: str, kwargs: Mapping[str, Any]) -> str:
        """A request as an error names it: its path, and for one endpoint for every call (Erply) the form's
        `request`; never the query or the rest of the form (they hold credentials), nor a next page's host and query
        (a vendor's link, as a first page's path and params)."""
        asked = f"{method} {httpx.URL(path).path if path else self.client.base_url.path}"
        data = kwargs.get("data")
        if isinstance(data, Mapping) and data.get("request"):
            asked = f"{asked} (request {data['request']})"
        return asked

    def _attempt(self, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        self.requests += 1
        deadline = time.monotonic() + self.policy.timeout_s
        try:
            with self.client.stream(method, path, **kwargs) as response:
                self._check_status(response, method, path, kwargs)
                content = _body_by(response, deadline)
        except PageTooLarge as exc:
            raise VendorError(f"{self._asked_for(method, path, kwargs)}: {exc}") from None
        except httpx.TimeoutException:
            raise RetryRequest(f"no answer from {self._origin} within {self.policy.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            if time.monotonic() >= deadline:  # cut by _body_by's watchdog
                raise RetryRequest(self._too_slow()) from None
            why = str(exc).strip() or type(exc).__name__  # "[Errno 111] Connection refused", a DNS failure...
            raise RetryRequest(f"connection to {self._origin} failed: {why}") from None
        if content is None:
            raise RetryRequest(self._too_slow())
        try:
            # msgspec: ints stay exact (Shopify ids beyond 2^53), floats keep their shortest repr ("3.49").
            body = msgspec.json.decode(content)
        except (msgspec.DecodeError, ValueError):
            raise RetryRequest("malformed JSON page") from None
        if self.check is not None:
            self.check(body, response)
        return body, response

    def _too_slow(self) -> str:
        return f"no whole answer from {self._origin} within {self.policy.timeout_s:g} s"

    def _check_status(self, response: httpx.Response, method: str, path: str, kwargs: Mapping[str, Any]) -> None:
        if self.pacer is not None:
            self.pacer.observe(response.headers)
        status = response.status_code
        asked, note = bounded_wait(response.headers.get("Retry-After"))
        if status == 429 and asked is None and self.blocked_s is not None:
            raise RetryRequest(
                f"HTTP 429 without Retry-After: the vendor's documented {self.blocked_s:g} s block", self.blocked_s
            )
        if status == 429 or status == 503:
            raise RetryRequest(f"HTTP {status}{note}", asked)
        if status >= 500:
            raise RetryRequest(f"HTTP {status}")
        if 300 <= status < 400:  # it was read as a malformed page and retried 5 times (or, as JSON, a page)
            raise VendorError(f"{self._asked_for(method, path, kwargs)}: {self._moved(response)}", status=status)
        if status >= 400:
            raise VendorError(f"{self._asked_for(method, path, kwargs)}: HTTP {status}", status=status)

    def _moved(self, response: httpx.Response) -> str:
        """A redirect, not followed (it would take the token along, and retrying cannot help): where it points."""
        location = response.headers.get("Location", "").strip()
        try:
            where = f"redirected to {self._where(response.url.join(location))}" if location else "no Location"
        except httpx.InvalidURL:
            where = "redirected to an address that is not one"
        check = "check the connection's --base-url (or --shop, --domain-prefix, --client-code)"
        return f"HTTP {response.status_code} ({where}): {check}"


def _steps_out(path: str) -> bool:
    """Whether a path (httpx's, decoded once) may leave its folder on some server: a `..` or `.` segment in any
    spelling (`%2e%2e`, `%252e%252e` decoded twice, Tomcat's `..;x`), or a backslash (`%5c`), which WHATWG parsers
    (proxies, IIS) read as `/`: `..\\..\\other` steps out as `../../other` does. httpx sends all these as they are."""
    while True:
        if "\\" in path or any(segment.partition(";")[0] in (".", "..") for segment in path.split("/")):
            return True
        if (decoded := unquote(path)) == path:
            return False
        path = decoded


def _body_by(response: httpx.Response, deadline: float) -> bytes | None:
    """The answer's body if it is whole by `deadline` (monotonic), else None. httpx's timeout bounds each read only:
    a vendor dripping a byte a second held a sync, and the sync job's other connections, for ever. A watchdog
    shuts the socket at the deadline, so a read in progress ends then too (a TransportError)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, (sock,)) if sock is not None else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.start()
    try:
        chunks, size = [], 0
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PAGE_BYTES:
            raise PageTooLarge(f"the answer's Content-Length {declared} is past {_MAX_PAGE}: not read")
        for chunk in response.iter_bytes():
            if time.monotonic() >= deadline:
                return None
            size += len(chunk)
            if size > MAX_PAGE_BYTES:
                raise PageTooLarge(f"the answer is larger than {_MAX_PAGE}: stopped reading it")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed meanwhile
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: an SSLSocket's drops its TLS state

"""One attempt: check the URL (SSRF), sign the message (Standard Webhooks), POST it to the checked address."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import httpx
from standardwebhooks import Webhook

from search_service.db.secretbox import SecretBox, SecretBoxError
from search_service.events import ssrf
from search_service.events.transport import PinnedTransport, pinned

log = logging.getLogger("plinqy.events")
USER_AGENT = "Plinqy-Webhooks/1.0"


def new_secret() -> str:
    """A Standard Webhooks signing secret: whsec_ + base64 of 32 random bytes."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_body(event_type: str, created_at: datetime, payload_json: str) -> str:
    """{type, timestamp, data}: the envelope Standard Webhooks suggests; data is the stored payload verbatim.
    created_at is the event's statement time, as its occurred_at (migration 0044)."""
    stamp = created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f'{{"type":{json.dumps(event_type)},"timestamp":"{stamp}","data":{payload_json}}}'


class Signers:
    """Decrypted secrets' signers, by stored token (decrypting and base64-decoding once per subscription)."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._cache: dict[str, Webhook] = {}
        self._unopened: set[str] = set()  # previous secrets this key cannot open, said once each

    def get(self, token: str) -> Webhook:
        signer = self._cache.get(token)
        if signer is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            signer = self._cache[token] = Webhook(self._box.decrypt(token.encode()))
        return signer

    def previous(self, token: str | None, webhook_id: UUID | None = None) -> Webhook | None:
        """The signer of a rotated-out secret still in its grace period. None: there is none, or this key cannot open
        it (stored under another key, then rotated): the current secret signs alone, said once in the log. Raising,
        it held every delivery the new secret signs, for the whole grace period."""
        if not token:
            return None
        try:
            return self.get(token)
        except SecretBoxError as exc:
            if token not in self._unopened:
                self._unopened.add(token)
                log.warning(json.dumps({"event": "previous_secret_skipped", "webhook": str(webhook_id),
                                        "error": str(exc), "signed_with": "the current secret alone",
                                        "why": "the secret a rotation replaced does not open with this key; a "
                                               "receiver must verify with the current one"}))  # fmt: skip
            return None


def signed_headers(
    signer: Webhook, message_id: str, body: str, now: datetime | None = None, previous: Webhook | None = None
) -> dict[str, str]:
    """previous: the secret a rotation replaced, in its grace period: both sign (`v1,<new> v1,<old>`, Standard
    Webhooks' list of signatures), so a receiver holding either secret verifies the message."""
    when = now or datetime.now(UTC)
    signature = signer.sign(message_id, when, body)
    if previous is not None:
        signature += " " + previous.sign(message_id, when, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    retry_after: str | None
    error: str | None  # why it is not a success, for last_error


_SILENT_ERRORS = {
    "ReadError": "the receiver reset or closed the connection before answering (a full accept backlog? a crash?)",
    "WriteError": "the receiver closed the connection while the body was sent",
    "RemoteProtocolError": "the receiver's answer was not valid HTTP",
    "ConnectError": "could not connect",
}


# The characters of a host name (an internationalised one's letters too) or an IPv4 address. urlsplit ends the
# host only at `/`, `?` or `#`: `host;token=…` and `host%2F%3Ftoken…` came back as the hostname, shown.
_HOST_NAME = re.compile(r"[\w.-]+")


def redirect_origin(url: str, location: str) -> str | None:
    """Scheme, host and port of a redirect's target (a relative one is the request's): never its path or query,
    which may carry a token, as the Location did into last_error and the log. None: no host can be read from it."""
    location = location.strip()
    try:
        if urllib.parse.urlsplit(location).scheme.lower() in ("", "http", "https"):
            location = location.replace("\\", "/")  # as WHATWG reads http(s): `host\cb?t=…` is a path
        parts = urllib.parse.urlsplit(urllib.parse.urljoin(url, location))
        port = parts.port
        host = parts.hostname or ""
        if ":" in host and "%" not in host:  # an IPv6 literal (a zone id's `%` is refused below)
            host = f"[{ipaddress.IPv6Address(host)}]"
    except ValueError:
        return None
    if not (host.startswith("[") or _HOST_NAME.fullmatch(host)):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def storable(text: str) -> str:
    """A receiver's text as last_error keeps it: a NUL (PostgreSQL's text cannot hold one: the write failed, and with
    it every result of the batch) as `\\x00`, the form the CLI and the log show the other control characters in."""
    return text.replace("\x00", "\\x00")


def _describe_failure(url: str, response: httpx.Response) -> str | None:
    code = response.status_code
    if 200 <= code < 300:
        return None
    if 300 <= code < 400:
        location = response.headers.get("location", "").strip()
        if not location:  # said "a redirect (to ?)"
            what = "a redirect without a Location header"
        else:
            where = redirect_origin(url, location)
            what = f"a redirect (to {storable(where[:200])})" if where else "a redirect to an unreadable Location"
        return f"HTTP {code}: {what} is a failure; redirects are not followed"
    return f"HTTP {code}: {storable(response.text[:200])}"


async def attempt(
    client: PinnedTransport,
    url: str,
    headers: dict[str, str],
    body: str,
    allow_hosts: frozenset[str],
    resolver: ssrf.Resolver,
) -> AttemptResult:
    """One POST. A refused URL, a timeout or a connection error are failures like a 5xx (retried)."""
    try:
        target = await ssrf.check(url, allow_hosts, resolver)
    except ssrf.UnsafeUrl as exc:
        return AttemptResult(None, None, storable(f"refused by the SSRF guard: {exc}"))
    try:
        with pinned(target):
            response = await client.post(target.url, body.encode(), headers)
    except httpx.TimeoutException as exc:  # its text, if any, says where (the addresses a connect tried)
        return AttemptResult(None, None, f"timed out ({type(exc).__name__}{f': {exc}' if str(exc) else ''})"[:500])
    except httpx.HTTPError as exc:  # some say nothing (a receiver that closed the connection: "ReadError: ")
        why = str(exc) or _SILENT_ERRORS.get(type(exc).__name__, "no detail given")
        return AttemptResult(None, None, storable(f"{type(exc).__name__}: {why}"[:500]))
    return AttemptResult(response.status_code, response.headers.get("retry-after"), _describe_failure(url, response))

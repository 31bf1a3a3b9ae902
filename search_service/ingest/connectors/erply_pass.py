"""One Erply query's pass through its `changedSince` pages, as the sync cursor keeps it between pages and polls.

Pages are numbered, so a product deleted mid-pass from a page already read moves the next page's first record onto
that page, never read. The pass then keeps its `since` (the next poll reads the same set again): when the set's
`recordsTotal` fell (`shifted`), or, as a delete and an add leave the total as it was, when the deletions log read
right after it has a product deleted while it ran (`unsettled` until then). A pass of one page is one answer: it
moves `since` at once.

`since` is the vendor's clock, `since_at` ours at the request that took it. The vendor's whole clock may jump
between two polls: forward, its stamps stay past `since`; back, a change is stamped before `since` and
`changedSince` would skip it until the vendor's clock caught up. A pass whose first answer finds the vendor's
clock behind `since` plus the time passed on ours lowers `since` by as much and asks its first page again. It
keeps the vendor's clock from before the jump (`ahead`) until its `since` passes it: a listing may hold a stamp up
to it, and a deletion read meanwhile is stamped no earlier (it lost to that stamp from the vendor's future: newest
wins marked it stale, and the deleted product stayed sellable). Not until the vendor's clock passes it: a deletion
logged while the clock was back and read only after it was put right still has its old stamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from search_service.ingest.connectors.common import PASS_OVERLAP_S

CLOCK_SLACK_S = 30  # a request's latency and `requestUnixTime`'s whole seconds: a smaller lag is no jump


@dataclass
class PassState:
    since: int = 0  # the vendor's clock: `requestUnixTime` of the first page of the pass that set it
    since_at: float | None = None  # our clock when that page was asked
    page: int = 1
    started: int | None = None  # `requestUnixTime` of this pass's first page: the next `since`
    started_at: float | None = None
    per_page: int = 0  # the most records a page of the pass brought
    last: str | None = None  # the last page's fingerprint
    total: Any = None  # the last page's `recordsTotal`
    shifted: bool = False  # `recordsTotal` fell mid-pass
    restarted: bool = False  # (this sync) a page repeated the one before: the pass began again at page 1
    ahead: int | None = None  # the vendor's clock before it went back, until `since` passes it

    @classmethod
    def load(cls, saved: Mapping[str, Any] | None) -> PassState:
        saved = saved or {}
        return cls(
            since=int(saved.get("since") or 0),
            since_at=saved.get("since_at"),
            page=int(saved.get("page") or 1),
            started=saved.get("started"),
            started_at=saved.get("started_at"),
            per_page=int(saved.get("per_page") or 0),
            last=saved.get("last"),
            total=saved.get("total"),
            shifted=bool(saved.get("shifted")),
            ahead=int(saved["ahead"]) if str(saved.get("ahead")).isdecimal() else None,
        )

    def mid_pass(self) -> dict[str, Any]:
        """The cursor after a page that is not the last: the next sync asks the next page."""
        saved = {key: value for key, value in asdict(self).items() if key != "restarted"}  # a resumed pass may too
        return {**saved, "page": self.page + 1}

    def kept(self) -> dict[str, Any]:
        """A finished pass that did not see a steady set: the next poll asks from the same `since`."""
        return with_ahead({"since": self.since, "since_at": self.since_at, "page": 1}, self.ahead)

    def settled(self) -> dict[str, Any]:
        return with_ahead(overlapped(self.started, self.started_at), self.ahead)

    def unsettled(self, ended: int) -> dict[str, Any]:
        """A finished pass of several pages, until the deletions log says whether a product went while it ran
        (`ended`: the vendor's clock at its last page)."""
        return {**self.kept(), "unsettled": [self.started, ended, self.started_at]}

    def first_answer(self, now: int, asked_at: float) -> bool:
        """Note the pass's start (`now`: the answer's `requestUnixTime`, `asked_at`: our clock before asking). True
        when the vendor's clock went back since `since` was taken: `since` is lowered past the jump (and a slack)
        and the first page must be asked again."""
        if self.started is not None:  # a pass resumed, or the page asked again
            return False
        self.started, self.started_at = now, asked_at
        if self.ahead is not None and self.since >= self.ahead:
            self.ahead = None  # the read window is past it: no record stamped before it is read again
        if not self.since or self.since_at is None:
            return False
        behind = self.since + (asked_at - float(self.since_at)) - now
        if behind <= CLOCK_SLACK_S:
            return False
        self.ahead = max(self.ahead or 0, int(now + behind) + 1)
        self.since = max(0, int(self.since - behind) - CLOCK_SLACK_S)
        return True


def deleted_while(products: Mapping[str, Any] | None, deletions: list[dict[str, Any]]) -> bool:
    """Whether one of `deletions` (getUserOperationsLog records) is stamped while the products pass ran."""
    window = (products or {}).get("unsettled")
    if not window:
        return False
    stamps = [int(str(r.get("timestamp"))) for r in deletions if str(r.get("timestamp")).isdecimal()]
    return any(window[0] <= stamp <= window[1] for stamp in stamps)


def settle(products: Mapping[str, Any], moved: bool) -> dict[str, Any]:
    """The products cursor once the deletions log is read: its pass's start as `since`, unless a product was deleted
    while it ran (`moved`: a page may have shifted past a record; the next poll reads the set again)."""
    started, _, started_at = products["unsettled"]
    if moved:
        return with_ahead({"since": products["since"], "since_at": products.get("since_at"), "page": 1}, products)
    return with_ahead(overlapped(started, started_at), products)


def overlapped(started: int | None, started_at: float | None) -> dict[str, Any]:
    """The cursor of a pass that began at `started` (the vendor's clock; `started_at` ours): the next poll asks from
    `PASS_OVERLAP_S` before it, so a change committed after the pass but stamped before its start (the vendor's
    servers and transactions seconds apart), or a level whose product came only after its stock row was read,
    is read again (both clocks move together: the clock-jump check is unchanged)."""
    if started is None:
        return {"since": started, "since_at": started_at, "page": 1}
    since_at = None if started_at is None else float(started_at) - PASS_OVERLAP_S
    return {"since": max(0, int(started - PASS_OVERLAP_S)), "since_at": since_at, "page": 1}


def with_ahead(cursor: dict[str, Any], ahead: int | Mapping[str, Any] | None) -> dict[str, Any]:
    """`cursor` with the vendor's clock from before it went back (`ahead`, or a cursor's), when there is one."""
    ahead = ahead.get("ahead") if isinstance(ahead, Mapping) else ahead
    return {**cursor, "ahead": ahead} if ahead is not None else cursor

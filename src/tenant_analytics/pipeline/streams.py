"""The support source streams the export lands, behind one interface: pages of records and where to resume.

Every stream is resumed from a string cursor kept per (tenant, stream):

* cursor-based exports (tickets, users): the source's ``after_cursor``;
* time-based exports (ticket events, organizations): the last page's ``end_time`` (records at that second may
  come again next time; loads merge by key, so a repeat changes nothing);
* groups, a plain list without increments: a digest of the whole list, so it lands only when it changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, Unpack

from tenant_analytics.sources.client import CursorExportClient
from tenant_analytics.sources.groups import GroupsClient
from tenant_analytics.sources.http import ClientOptions
from tenant_analytics.sources.time_export import TimeExportClient
from tenant_analytics.tenants.models import Tenant

# Landing order; every stream of a tenant is exported each run.
SUPPORT_STREAMS: Final[tuple[str, ...]] = ("tickets", "users", "ticket_events", "organizations", "groups")


@dataclass(frozen=True)
class StreamPage:
    """A page to land: its valid records, the rejected ones with reasons, and the cursor after it."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)


class StreamSource(Protocol):
    def pages(self, *, cursor: str | None, start_time: int) -> Iterator[StreamPage]:
        """Pages after ``cursor``, or from ``start_time`` (unix seconds) when there is no cursor yet."""
        ...


SourceFactory = Callable[[Tenant, str], StreamSource]


@dataclass(frozen=True)
class CursorStream:
    client: CursorExportClient

    def pages(self, *, cursor: str | None, start_time: int) -> Iterator[StreamPage]:
        if cursor is not None:
            pages = self.client.iter_pages(cursor=cursor)
        else:
            pages = self.client.iter_pages(start_time=start_time)
        for page in pages:
            yield StreamPage(items=page.items, rejected=page.rejected, next_cursor=page.after_cursor)


@dataclass(frozen=True)
class TimeStream:
    client: TimeExportClient

    def pages(self, *, cursor: str | None, start_time: int) -> Iterator[StreamPage]:
        start = int(cursor) if cursor is not None else start_time
        for page in self.client.iter_pages(start_time=start):
            yield StreamPage(items=page.items, rejected=page.rejected, next_cursor=str(page.end_time))


@dataclass(frozen=True)
class GroupsStream:
    client: GroupsClient

    def pages(self, *, cursor: str | None, start_time: int) -> Iterator[StreamPage]:
        items, rejected = self.client.fetch_all()
        digest = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()
        if digest == cursor:
            if rejected:
                yield StreamPage(items=[], rejected=rejected, next_cursor=digest)
            return
        yield StreamPage(items=items, rejected=rejected, next_cursor=digest)


def http_stream(stream: str, base_url: str, **options: Unpack[ClientOptions]) -> StreamSource:
    """The source client of ``stream`` for a tenant's API at ``base_url`` (options: timeout, auth, ...)."""
    if stream in ("tickets", "users"):
        return CursorStream(CursorExportClient(base_url, entity=stream, **options))  # type: ignore[arg-type]
    if stream in ("ticket_events", "organizations"):
        return TimeStream(TimeExportClient(base_url, entity=stream, **options))  # type: ignore[arg-type]
    if stream == "groups":
        return GroupsStream(GroupsClient(base_url, **options))
    raise ValueError(f"unknown support stream {stream!r}; streams: {', '.join(SUPPORT_STREAMS)}")

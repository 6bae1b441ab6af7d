"""Client of the time-based incremental exports (ticket events, organizations).

``TimeExportClient.iter_pages`` walks ``GET <base>/api/v2/incremental/<entity>.json?start_time=<unix s>``. The
source restarts each page at the previous page's ``end_time``, so the items of that boundary second come twice; the
client drops them (events by ``id``, organizations by ``id`` and ``updated_at``), remembering only the keys of the
last second, so memory stays per page however long the export. The last page's ``end_time`` is where the next
export resumes; the loader must still merge by key, because a resumed export repeats the boundary second again.

The client stops when ``end_of_stream`` is true, or when the next ``start_time`` would be less than 60 s before
now (the source refuses those); the items after it come with the next export. Retries, timeouts, credentials and
rejected records are as for :class:`~tenant_analytics.sources.client.CursorExportClient`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any, Final, Unpack, get_args

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from tenant_analytics.errors import InvalidInput, MalformedPage
from tenant_analytics.sources.client import split_records
from tenant_analytics.sources.endpoints import ENDPOINTS, TimeEntity
from tenant_analytics.sources.http import ClientOptions, SourceHttpClient, load_document, validate_envelope
from tenant_analytics.sources.records import SourceOrganization, SourceRecord, SourceTicketEvent

logger = logging.getLogger(__name__)

TIME_ENTITIES: Final[tuple[str, ...]] = get_args(TimeEntity)
RecordKey = tuple[int, str]


class TimePage(BaseModel):
    """One page of a time-based export, with the items already delivered by the previous page removed."""

    model_config = ConfigDict(frozen=True)

    url: str
    page_number: int
    entity: TimeEntity
    items: list[dict[str, Any]]
    rejected: list[tuple[dict[str, Any], str]] = []
    parsed: list[SourceRecord]
    duplicates: int = 0
    end_time: int
    end_of_stream: bool


class _TimeEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    next_page: StrictStr | None = None
    end_time: StrictInt
    count: StrictInt | None = None
    end_of_stream: StrictBool


class _EventsEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ticket_events: list[dict[str, Any]]


class _OrganizationsEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    organizations: list[dict[str, Any]]


def parse_time_page(body: bytes, *, url: str, page_number: int, entity: TimeEntity) -> TimePage:
    """Validate a time-based export response (without removing duplicates).

    Raise ``MalformedPage`` if the body is not JSON or its list, ``end_time`` or ``end_of_stream`` is missing or of
    the wrong type; records that do not validate are returned in ``rejected`` with their reason.
    """
    where = f"page {page_number} of {url}"
    document = load_document(body, where)
    if entity == "ticket_events":
        raw = validate_envelope(_EventsEnvelope, document, where).ticket_events
    else:
        raw = validate_envelope(_OrganizationsEnvelope, document, where).organizations
    envelope = validate_envelope(_TimeEnvelope, document, where)
    items, parsed, rejected = split_records(entity, raw, where)
    return TimePage(
        url=url,
        page_number=page_number,
        entity=entity,
        items=items,
        rejected=rejected,
        parsed=parsed,
        end_time=envelope.end_time,
        end_of_stream=envelope.end_of_stream,
    )


def record_key(record: SourceRecord) -> RecordKey:
    """Return the key duplicates share: the id, plus ``updated_at`` for versioned records (organizations)."""
    if isinstance(record, SourceTicketEvent):
        return record.id, ""
    if isinstance(record, SourceOrganization):
        return record.id, record.updated_at.isoformat()
    raise TypeError(f"{type(record).__name__} is not served by a time-based export")


def record_second(record: SourceRecord) -> int:
    """Return the unix second that orders ``record`` in a time-based export."""
    moment = record.created_at if isinstance(record, SourceTicketEvent) else record.updated_at
    return math.floor(moment.timestamp())


class TimeExportClient(SourceHttpClient):
    """Reads one tenant's time-based export of ``entity`` (``"ticket_events"`` or ``"organizations"``)."""

    def __init__(self, base_url: str, *, entity: TimeEntity, **options: Unpack[ClientOptions]) -> None:
        if entity not in TIME_ENTITIES:
            raise InvalidInput(
                f"entity {entity!r} has no time-based export; allowed: {', '.join(TIME_ENTITIES)}", field="entity"
            )
        super().__init__(base_url, **options)
        self.entity: TimeEntity = entity
        self.export_url = self.base_url + ENDPOINTS[entity].path

    def iter_pages(self, *, start_time: int) -> Iterator[TimePage]:
        """Yield pages from ``start_time`` (unix seconds, moved back to now - 60 s if later), each item once.

        Stops after a page with ``end_of_stream``, or when the next page would start less than 60 s before now.
        Resume the next export from the last page's ``end_time``.
        """
        if start_time < 0:
            raise InvalidInput(f"start_time must be >= 0 unix seconds, got {start_time}", field="start_time")
        start = self.clamp_start_time(start_time)
        boundary: set[RecordKey] = set()
        page_number = 1
        while True:
            url = f"{self.export_url}?start_time={start}"
            page = parse_time_page(self._get(url, page_number), url=url, page_number=page_number, entity=self.entity)
            keys = [record_key(record) for record in page.parsed]
            fresh = [index for index, key in enumerate(keys) if key not in boundary]
            boundary = {
                key for key, record in zip(keys, page.parsed, strict=True) if record_second(record) >= page.end_time
            }
            yield page.model_copy(
                update={
                    "items": [page.items[index] for index in fresh],
                    "parsed": [page.parsed[index] for index in fresh],
                    "duplicates": len(keys) - len(fresh),
                }
            )
            if page.end_of_stream:
                return
            if page.end_time <= start:
                raise MalformedPage(
                    f"page {page_number} of {url}: end_time {page.end_time} did not advance and end_of_stream is false",
                    field="end_time",
                )
            if page.end_time > self.latest_start_time():
                logger.info("%s: next start_time %d is within the last minute; stopping here", url, page.end_time)
                return
            start = page.end_time
            page_number += 1

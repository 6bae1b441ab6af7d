"""Client of the cursor-based incremental exports (tickets, users), as used by the export Lambda.

``CursorExportClient.iter_pages`` walks ``GET <base>/api/v2/incremental/<entity>/cursor.json`` from a
``start_time`` or a stored cursor until ``end_of_stream``. Each page carries the raw dicts of its valid records
(to land as they are, in ``items``; ``tickets`` is kept as an alias), their parsed form, and the records that do not
validate with the reason (``rejected``), to be quarantined. A page that is not JSON or lacks its list or paging
fields raises :class:`~tenant_analytics.errors.MalformedPage` before it is yielded, so nothing from it can be
landed. Retries, timeouts and credentials are those of :class:`~tenant_analytics.sources.http.SourceHttpClient`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Final, Unpack, get_args
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from tenant_analytics.errors import InvalidInput, MalformedPage
from tenant_analytics.sources.endpoints import (
    ENDPOINTS,
    MIN_START_TIME_AGE_S,
    TICKETS_CURSOR_PATH,
    CursorEntity,
    Entity,
)
from tenant_analytics.sources.http import ClientOptions, RetryPolicy, SourceHttpClient, load_document, validate_envelope
from tenant_analytics.sources.records import SourceRecord, SourceTicket, parse_record

__all__ = [
    "EXPORT_PATH",
    "MIN_START_TIME_AGE_S",
    "CursorExportClient",
    "CursorPage",
    "RetryPolicy",
    "SourceTicket",
    "TicketPage",
    "parse_page",
    "split_records",
]

logger = logging.getLogger(__name__)

EXPORT_PATH: Final = TICKETS_CURSOR_PATH
CURSOR_ENTITIES: Final[tuple[str, ...]] = get_args(CursorEntity)


class CursorPage(BaseModel):
    """One page of a cursor-based export: valid raw records, their parsed form, rejected records, where to go on."""

    model_config = ConfigDict(frozen=True)

    url: str
    page_number: int
    entity: CursorEntity = "tickets"
    items: list[dict[str, Any]]
    rejected: list[tuple[dict[str, Any], str]] = []
    parsed: list[SourceRecord]
    after_cursor: str | None
    after_url: str | None
    end_of_stream: bool

    @property
    def tickets(self) -> list[dict[str, Any]]:
        """Return ``items``: the valid records of the page (tickets, for the ticket export)."""
        return self.items


# The ticket export's page; the name the pipeline has always used.
TicketPage = CursorPage


class _CursorEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    after_cursor: StrictStr | None = None
    after_url: StrictStr | None = None
    end_of_stream: StrictBool


class _TicketsEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tickets: list[dict[str, Any]]


class _UsersEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    users: list[dict[str, Any]]


_LIST_ENVELOPES: Final[dict[CursorEntity, type[_TicketsEnvelope] | type[_UsersEnvelope]]] = {
    "tickets": _TicketsEnvelope,
    "users": _UsersEnvelope,
}


def split_records(
    entity: Entity, raw: list[dict[str, Any]], where: str
) -> tuple[list[dict[str, Any]], list[SourceRecord], list[tuple[dict[str, Any], str]]]:
    """Validate each record of a page; return the valid raw dicts, their parsed form and ``(record, reason)``."""
    items: list[dict[str, Any]] = []
    parsed: list[SourceRecord] = []
    rejected: list[tuple[dict[str, Any], str]] = []
    for index, record in enumerate(raw):
        result = parse_record(entity, record)
        if isinstance(result, str):
            record_id = record.get("id")
            label = f"{entity}[{index}]" + (f" (id {record_id})" if type(record_id) is int else "")
            logger.warning("%s: %s %s; record rejected", where, label, result)
            rejected.append((record, result))
        else:
            items.append(record)
            parsed.append(result)
    return items, parsed, rejected


def parse_page(body: bytes, *, url: str, page_number: int, entity: CursorEntity = "tickets") -> CursorPage:
    """Validate the body of a cursor export response.

    Raise ``MalformedPage`` naming the page, URL and fault if the body is not JSON or its list or paging fields are
    missing or of the wrong type; records that do not validate are returned in ``rejected`` with their reason.
    """
    where = f"page {page_number} of {url}"
    document = load_document(body, where)
    listed = validate_envelope(_LIST_ENVELOPES[entity], document, where)
    envelope = validate_envelope(_CursorEnvelope, document, where)
    if not envelope.end_of_stream and not envelope.after_cursor:
        raise MalformedPage(
            f"{where}: field 'after_cursor' is missing but end_of_stream is false", field="after_cursor"
        )
    raw = listed.tickets if isinstance(listed, _TicketsEnvelope) else listed.users
    items, parsed, rejected = split_records(entity, raw, where)
    return CursorPage(
        url=url,
        page_number=page_number,
        entity=entity,
        items=items,
        rejected=rejected,
        parsed=parsed,
        after_cursor=envelope.after_cursor,
        after_url=envelope.after_url,
        end_of_stream=envelope.end_of_stream,
    )


class CursorExportClient(SourceHttpClient):
    """Reads one tenant's cursor-based incremental export of ``entity`` from ``base_url``.

    ``base_url`` is the tenant's API base, e.g. ``https://acme.example.com``; ``entity`` is ``"tickets"`` (the
    default) or ``"users"``. Every keyword of :class:`SourceHttpClient` (timeouts, retries, credentials) applies.
    """

    def __init__(self, base_url: str, *, entity: CursorEntity = "tickets", **options: Unpack[ClientOptions]) -> None:
        if entity not in CURSOR_ENTITIES:
            raise InvalidInput(
                f"entity {entity!r} has no cursor export; allowed: {', '.join(CURSOR_ENTITIES)}", field="entity"
            )
        super().__init__(base_url, **options)
        self.entity: CursorEntity = entity
        self.export_url = self.base_url + ENDPOINTS[entity].path

    def iter_pages(self, *, start_time: int | None = None, cursor: str | None = None) -> Iterator[CursorPage]:
        """Yield validated pages from ``start_time`` (unix seconds) or ``cursor`` until ``end_of_stream``.

        Give exactly one of the two. The last page's ``after_cursor`` is where the next export resumes.
        """
        if (start_time is None) == (cursor is None):
            raise InvalidInput("give exactly one of start_time or cursor", field="start_time")
        if start_time is not None:
            if start_time < 0:
                raise InvalidInput(f"start_time must be >= 0 unix seconds, got {start_time}", field="start_time")
            params = {"start_time": str(self.clamp_start_time(start_time))}
        else:
            if not cursor:
                raise InvalidInput("cursor must not be empty", field="cursor")
            params = {"cursor": cursor}
        page_number = 1
        while True:
            url = f"{self.export_url}?{urlencode(params)}"
            page = parse_page(self._get(url, page_number), url=url, page_number=page_number, entity=self.entity)
            if not page.end_of_stream and page.after_cursor == params.get("cursor"):
                raise MalformedPage(
                    f"page {page_number} of {url}: after_cursor did not advance and end_of_stream is false",
                    field="after_cursor",
                )
            yield page
            if page.end_of_stream:
                return
            assert page.after_cursor is not None  # parse_page guarantees it when end_of_stream is false
            params = {"cursor": page.after_cursor}
            page_number += 1

"""Client of the groups list: ``GET <base>/api/v2/groups.json?page=<n>``, plain page-number paging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from tenant_analytics.sources.client import split_records
from tenant_analytics.sources.endpoints import GROUPS_PATH
from tenant_analytics.sources.http import SourceHttpClient, load_document, validate_envelope
from tenant_analytics.sources.records import SourceRecord


class GroupsPage(BaseModel):
    """One page of groups: the valid raw dicts, their parsed form and the rejected records with reasons."""

    model_config = ConfigDict(frozen=True)

    url: str
    page_number: int
    items: list[dict[str, Any]]
    rejected: list[tuple[dict[str, Any], str]] = []
    parsed: list[SourceRecord]
    next_page: str | None
    count: int | None = None


class _GroupsEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    groups: list[dict[str, Any]]
    next_page: StrictStr | None = None
    count: StrictInt | None = None


def parse_groups_page(body: bytes, *, url: str, page_number: int) -> GroupsPage:
    """Validate a groups response; raise ``MalformedPage`` if it is not JSON or lacks ``groups``."""
    where = f"page {page_number} of {url}"
    envelope = validate_envelope(_GroupsEnvelope, load_document(body, where), where)
    items, parsed, rejected = split_records("groups", envelope.groups, where)
    return GroupsPage(
        url=url,
        page_number=page_number,
        items=items,
        rejected=rejected,
        parsed=parsed,
        next_page=envelope.next_page,
        count=envelope.count,
    )


class GroupsClient(SourceHttpClient):
    """Reads every group of one tenant; the keywords of :class:`SourceHttpClient` apply."""

    @property
    def groups_url(self) -> str:
        """Return the groups endpoint of this tenant (without query)."""
        return self.base_url + GROUPS_PATH

    def iter_pages(self) -> Iterator[GroupsPage]:
        """Yield the pages in order until one has no ``next_page``."""
        page_number = 1
        while True:
            # Build the next URL ourselves rather than follow next_page, so credentials only go to base_url.
            url = f"{self.groups_url}?page={page_number}"
            page = parse_groups_page(self._get(url, page_number), url=url, page_number=page_number)
            yield page
            if page.next_page is None:
                return
            page_number += 1

    def fetch_all(self) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """Return every valid group as served, and every rejected record with its reason."""
        items: list[dict[str, Any]] = []
        rejected: list[tuple[dict[str, Any], str]] = []
        for page in self.iter_pages():
            items.extend(page.items)
            rejected.extend(page.rejected)
        return items, rejected

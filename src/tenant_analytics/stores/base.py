"""The protocol every analytics store implements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class MergeStats:
    """What a merge did to one tenant's facts."""

    rows_in: int
    inserted: int
    updated: int
    size_rows: int


class AnalyticsStore(Protocol):
    """Where tenants' facts live and are queried."""

    store_id: str

    def ensure_schema(self) -> None:
        """Create tables, roles and row-level security if missing (idempotent)."""

    def merge_tickets(self, tenant_id: str, csv_chunks: Iterable[bytes]) -> MergeStats:
        """Merge curated ticket CSV rows into the tenant's facts in one transaction (newer updated_at wins)."""

    def query(self, tenant_id: str, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only statement as the query role with the tenant set; return column names and rows."""

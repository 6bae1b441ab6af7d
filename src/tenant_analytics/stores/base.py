"""The protocol every analytics store implements."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tenant_analytics.models.postgres import RefreshRecord


Conninfo = str | Callable[[], str]
"""A libpq connection string, or a function making one for each new connection (IAM tokens expire)."""


def conninfo_now(conninfo: Conninfo) -> str:
    """The connection string to connect with now."""
    return conninfo if isinstance(conninfo, str) else conninfo()


@dataclass(frozen=True)
class CuratedFiles:
    """One tenant's curated CSV part files of one table: where they are (for a COPY from S3) and how to stream them."""

    uri_prefix: str | None
    open_chunks: Callable[[], Iterator[bytes]]

    def __iter__(self) -> Iterator[bytes]:
        return self.open_chunks()

    @classmethod
    def from_bytes(cls, chunks: Iterable[bytes]) -> CuratedFiles:
        """In-memory files (tests, small local loads)."""
        kept = list(chunks)
        return cls(uri_prefix=None, open_chunks=lambda: iter(kept))


@dataclass(frozen=True)
class MergeStats:
    """What a merge did to one tenant's facts: its tickets, and the rows in per curated table."""

    rows_in: int
    inserted: int
    updated: int
    size_rows: int
    tables: dict[str, int] = field(default_factory=dict)


class AnalyticsStore(Protocol):
    """Where tenants' facts live and are queried."""

    store_id: str
    dialect: str  # sqlglot dialect of the statements it runs: "postgres" or "redshift"

    def ensure_schema(self) -> None:
        """Create tables, roles and row-level security if missing (idempotent)."""

    def merge_curated(self, tenant_id: str, files: Mapping[str, CuratedFiles]) -> MergeStats:
        """Merge a tenant's curated tables (name -> CSV files, see transforms.tables) in one transaction."""

    def refresh_models(self, tenant_ids: Sequence[str] | None = None, *, full: bool = False) -> list[RefreshRecord]:
        """Bring the store's models up to date with its facts (only ``tenant_ids``' changes, if given)."""

    def query(self, tenant_id: str, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only statement as the query role with the tenant set; return column names and rows."""

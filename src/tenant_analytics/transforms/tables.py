"""The curated support tables: what the Spark run writes per tenant and every loader merges. Standard library only.

Each table is written as CSV under ``<output>/<table>/tenant_id=<id>/`` with the columns below in this order
(``tenant_id`` is the folder, not a column of the files). A table's ``merge`` says how a load applies its rows:

* ``newer``: upsert by key; a row replaces the stored one only if its ``version_column`` is not older;
* ``replace``: upsert by key, the new row always wins (values recomputed from the full history);
* ``insert_only``: immutable facts; a row whose key is stored already changes nothing;
* ``replace_tenant``: the tenant's rows are replaced as a whole (a small, fully recomputed table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MergeMode = Literal["newer", "replace", "insert_only", "replace_tenant"]
SqlType = Literal["bigint", "integer", "boolean", "date", "timestamptz", "text"]
_REDSHIFT_TYPES: Final[dict[str, str]] = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamptz": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType
    not_null: bool = False
    text_length: int = 256  # Redshift VARCHAR length of a text column

    @property
    def redshift_type(self) -> str:
        return f"VARCHAR({self.text_length})" if self.type == "text" else _REDSHIFT_TYPES[self.type]


@dataclass(frozen=True)
class CuratedTable:
    """One curated table of the ``support`` schema (every table also leads with ``tenant_id``)."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    merge: MergeMode
    sort_column: str
    version_column: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def qualified_name(self) -> str:
        return f"support.{self.name}"


def _c(name: str, kind: SqlType, *, not_null: bool = False, length: int = 256) -> Column:
    return Column(name, kind, not_null, length)


TICKETS: Final = CuratedTable(
    name="tickets",
    columns=(
        _c("ticket_id", "bigint", not_null=True),
        _c("created_at", "timestamptz", not_null=True),
        _c("updated_at", "timestamptz", not_null=True),
        _c("status", "text", length=32),
        _c("priority", "text", length=32),
        _c("channel", "text", length=32),
        _c("requester_id", "bigint"),
        _c("assignee_id", "bigint"),
        _c("group_id", "bigint"),
        _c("organization_id", "bigint"),
        _c("requester_name", "text"),
        _c("assignee_name", "text"),
        _c("group_name", "text"),
        _c("organization_name", "text"),
    ),
    key=("ticket_id",),
    merge="newer",
    version_column="updated_at",
    sort_column="created_at",
)
USERS: Final = CuratedTable(
    name="users",
    columns=(
        _c("user_id", "bigint", not_null=True),
        _c("name", "text"),
        _c("role", "text", length=32),
        _c("organization_id", "bigint"),
        _c("created_at", "timestamptz"),
        _c("updated_at", "timestamptz", not_null=True),
    ),
    key=("user_id",),
    merge="newer",
    version_column="updated_at",
    sort_column="user_id",
)
GROUPS: Final = CuratedTable(
    name="groups",
    columns=(_c("group_id", "bigint", not_null=True), _c("name", "text")),
    key=("group_id",),
    merge="replace",
    sort_column="group_id",
)
ORGANIZATIONS: Final = CuratedTable(
    name="organizations",
    columns=(
        _c("organization_id", "bigint", not_null=True),
        _c("name", "text"),
        _c("created_at", "timestamptz"),
        _c("updated_at", "timestamptz", not_null=True),
    ),
    key=("organization_id",),
    merge="newer",
    version_column="updated_at",
    sort_column="organization_id",
)
TICKET_EVENTS: Final = CuratedTable(
    name="ticket_events",
    columns=(
        _c("ticket_id", "bigint", not_null=True),
        _c("event_id", "bigint", not_null=True),
        _c("event_at", "timestamptz", not_null=True),
        _c("event_type", "text", length=32),
        _c("author_id", "bigint"),
        _c("public", "boolean"),
        _c("previous_value", "text", length=64),
        _c("value", "text", length=64),
    ),
    key=("ticket_id", "event_id"),
    merge="insert_only",
    sort_column="event_at",
)
TICKET_METRICS: Final = CuratedTable(
    name="ticket_metrics",
    columns=(
        _c("ticket_id", "bigint", not_null=True),
        _c("created_at", "timestamptz", not_null=True),
        _c("current_status", "text", length=32),
        _c("first_reply_at", "timestamptz"),
        _c("first_reply_seconds", "bigint"),
        _c("solved_at", "timestamptz"),
        _c("full_resolution_seconds", "bigint"),
        _c("reopens", "bigint"),
        _c("replies", "bigint"),
        _c("agent_touches", "bigint"),
    ),
    key=("ticket_id",),
    merge="replace",
    sort_column="created_at",
)
DAILY_TICKET_COUNTS: Final = CuratedTable(
    name="daily_ticket_counts",
    columns=(
        _c("day", "date", not_null=True),
        _c("created", "bigint"),
        _c("solved", "bigint"),
        _c("reopened", "bigint"),
        _c("backlog", "bigint"),
    ),
    key=("day",),
    merge="replace_tenant",
    sort_column="day",
)

# Load order: reference data first, then the facts that name it, then what is derived from the facts.
SUPPORT_TABLES: Final[tuple[CuratedTable, ...]] = (
    USERS,
    GROUPS,
    ORGANIZATIONS,
    TICKETS,
    TICKET_EVENTS,
    TICKET_METRICS,
    DAILY_TICKET_COUNTS,
)
TABLES_BY_NAME: Final[dict[str, CuratedTable]] = {t.name: t for t in SUPPORT_TABLES}

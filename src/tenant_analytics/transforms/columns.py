"""Column order of the curated ticket files: written by the Spark run, read by every loader."""

from __future__ import annotations

from typing import Final

# tenant_id is the partition folder (tenant_id=<id>/), not a column of the files.
TICKET_FACT_COLUMNS: Final[tuple[str, ...]] = (
    "ticket_id",
    "created_at",
    "updated_at",
    "status",
    "priority",
    "channel",
    "requester_id",
    "assignee_id",
    "group_id",
    "organization_id",
)

"""Landed tables that models may read with ``{{ source('schema.table') }}``: their table, primary key and columns."""

from __future__ import annotations

from dataclasses import dataclass

from tenant_analytics.stores.messaging import CAMPAIGN_CSV_COLUMNS, EVENT_CSV_COLUMNS, TEMPLATE_CSV_COLUMNS
from tenant_analytics.transforms.tables import TICKETS


@dataclass(frozen=True)
class Source:
    """One landed table: its qualified name (``schema.table``), primary-key columns and columns in table order."""

    name: str
    primary_key: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


def _landed(file_columns: tuple[str, ...]) -> tuple[str, ...]:
    # Both stores create every landed table as its files' columns between the tenant (which the loader binds, files
    # carry none) and the load time; tests/integration/models/test_models_sources.py holds them to the stores' DDL.
    return ("tenant_id", *file_columns, "loaded_at")


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("support.tickets", ("tenant_id", "ticket_id"), _landed(TICKETS.column_names)),
        Source("messaging.events", ("tenant_id", "message_id", "event_type"), _landed(EVENT_CSV_COLUMNS)),
        Source("messaging.campaigns", ("tenant_id", "campaign_id"), _landed(CAMPAIGN_CSV_COLUMNS)),
        Source("messaging.templates", ("tenant_id", "template_id"), _landed(TEMPLATE_CSV_COLUMNS)),
    )
}

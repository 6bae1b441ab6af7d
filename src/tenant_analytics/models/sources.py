"""Landed tables that models may read with ``{{ source('schema.table') }}``: their table and primary key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One landed table: its qualified name (``schema.table``) and primary-key columns."""

    name: str
    primary_key: tuple[str, ...]

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("support.tickets", ("tenant_id", "ticket_id")),
        Source("messaging.events", ("tenant_id", "message_id", "event_type")),
        Source("messaging.campaigns", ("tenant_id", "campaign_id")),
        Source("messaging.templates", ("tenant_id", "template_id")),
    )
}

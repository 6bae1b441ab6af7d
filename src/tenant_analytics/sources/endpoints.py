"""Paths, list keys and timestamp fields of the source API endpoints, shared by the clients and the local server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

CursorEntity = Literal["tickets", "users"]
TimeEntity = Literal["ticket_events", "organizations"]
Entity = Literal["tickets", "users", "ticket_events", "organizations", "groups"]

TICKETS_CURSOR_PATH: Final = "/api/v2/incremental/tickets/cursor.json"
USERS_CURSOR_PATH: Final = "/api/v2/incremental/users/cursor.json"
TICKET_EVENTS_PATH: Final = "/api/v2/incremental/ticket_events.json"
ORGANIZATIONS_PATH: Final = "/api/v2/incremental/organizations.json"
GROUPS_PATH: Final = "/api/v2/groups.json"
# Sources reject (or silently under-report) a start_time in the last minute, so never ask for one.
MIN_START_TIME_AGE_S: Final = 60


@dataclass(frozen=True)
class Endpoint:
    """Where an entity is served, the key of its list in a page, and the field that orders it in time."""

    entity: Entity
    path: str
    list_key: str
    time_field: str


ENDPOINTS: Final[dict[Entity, Endpoint]] = {
    "tickets": Endpoint("tickets", TICKETS_CURSOR_PATH, "tickets", "updated_at"),
    "users": Endpoint("users", USERS_CURSOR_PATH, "users", "updated_at"),
    "ticket_events": Endpoint("ticket_events", TICKET_EVENTS_PATH, "ticket_events", "created_at"),
    "organizations": Endpoint("organizations", ORGANIZATIONS_PATH, "organizations", "updated_at"),
    "groups": Endpoint("groups", GROUPS_PATH, "groups", "updated_at"),
}

"""The fields the platform reads from each source record, and :func:`validate_record` for quarantining bad ones.

A record that does not validate is not an error of the page: clients keep the page's valid records and hand back
each bad one with the reason (e.g. ``field 'id' is missing``), so the pipeline can quarantine it and go on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.endpoints import Entity


def _parse_api_timestamp(value: object) -> datetime:
    """Accept only ISO-8601 strings with an offset or ``Z``; return them in UTC."""
    if not isinstance(value, str):
        raise PydanticCustomError("iso_time", "expected an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("iso_time", "not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise PydanticCustomError("iso_time_naive", "timestamp has no timezone; expected a 'Z' or an offset")
    return parsed.astimezone(UTC)


ApiTimestamp = Annotated[datetime, BeforeValidator(_parse_api_timestamp)]
TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed", "deleted"]
TicketPriority = Literal["low", "normal", "high", "urgent"]
UserRole = Literal["end-user", "agent", "admin"]
EventType = Literal["create", "status_change", "comment", "assignee_change", "priority_change"]


class TicketVia(BaseModel):
    """How the ticket reached the support team."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel: StrictStr


class SourceTicket(BaseModel):
    """The ticket fields the platform uses; every other field of the source's ticket JSON is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictInt
    created_at: ApiTimestamp
    updated_at: ApiTimestamp
    status: TicketStatus
    priority: TicketPriority | None = None
    via: TicketVia
    requester_id: StrictInt
    assignee_id: StrictInt | None = None
    group_id: StrictInt | None = None
    organization_id: StrictInt | None = None

    @property
    def channel(self) -> str:
        """Return ``via.channel``."""
        return self.via.channel


class SourceUser(BaseModel):
    """An agent, admin or end user."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictInt
    name: StrictStr
    email: StrictStr | None = None
    role: UserRole
    organization_id: StrictInt | None = None
    created_at: ApiTimestamp
    updated_at: ApiTimestamp


class SourceOrganization(BaseModel):
    """A customer organization; end users and tickets may belong to one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictInt
    name: StrictStr
    domain_names: list[StrictStr] = []
    created_at: ApiTimestamp
    updated_at: ApiTimestamp


class SourceGroup(BaseModel):
    """A team of agents tickets are routed to."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictInt
    name: StrictStr
    created_at: ApiTimestamp
    updated_at: ApiTimestamp


class SourceTicketEvent(BaseModel):
    """One change of a ticket: its creation, a comment, or a status, assignee or priority change."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictInt
    ticket_id: StrictInt
    created_at: ApiTimestamp
    event_type: EventType
    author_id: StrictInt
    public: StrictBool = False
    previous_value: StrictStr | None = None
    value: StrictStr | None = None


SourceRecord = SourceTicket | SourceUser | SourceOrganization | SourceGroup | SourceTicketEvent
RECORD_MODELS: Final[dict[Entity, type[SourceRecord]]] = {
    "tickets": SourceTicket,
    "users": SourceUser,
    "organizations": SourceOrganization,
    "groups": SourceGroup,
    "ticket_events": SourceTicketEvent,
}


def parse_record(entity: Entity, record: object) -> SourceRecord | str:
    """Return the parsed record, or the reason it is rejected (see :func:`validate_record`)."""
    model = RECORD_MODELS.get(entity)
    if model is None:
        raise InvalidInput(f"unknown entity {entity!r}; allowed: {', '.join(RECORD_MODELS)}", field="entity")
    if not isinstance(record, dict):
        return f"record is a JSON {type(record).__name__}, not an object"
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        return describe_error(exc.errors()[0])


def validate_record(entity: Entity, record: object) -> str | None:
    """Return why ``record`` is not a valid ``entity`` record, or None if it is.

    Reasons read like ``field 'id' is missing``, ``field 'updated_at' is not an ISO-8601 time: 'yesterday'`` or
    ``field 'id' is invalid: Input should be a valid integer (got '17')``; they name the first problem only.
    """
    parsed = parse_record(entity, record)
    return parsed if isinstance(parsed, str) else None


def error_location(error: ErrorDetails) -> str:
    """Return a pydantic error's location as a path such as ``via.channel`` or ``tickets[0]``."""
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def describe_error(error: ErrorDetails) -> str:
    """Turn one pydantic error into "field 'x' is missing" or "field 'x' is invalid: why (got ...)"."""
    field = error_location(error)
    got = repr(error.get("input"))
    if len(got) > 60:
        got = got[:57] + "..."
    if error["type"] == "missing":
        return f"field '{field}' is missing"
    if error["type"] == "iso_time":
        return f"field '{field}' is not an ISO-8601 time: {got}"
    if error["type"] == "iso_time_naive":
        return f"field '{field}' is an ISO-8601 time without a timezone: {got}"
    return f"field '{field}' is invalid: {error['msg']} (got {got})"

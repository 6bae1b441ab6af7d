"""Replays ticket events into each ticket's state and support metrics: the reference the transforms are checked by.

Definitions (times are event ``created_at``; "agent" means a user whose role is ``agent`` or ``admin``):

* first reply: the first ``comment`` with ``public`` true authored by an agent; tickets without one have none
  (agents never author events at the ticket's creation, so it is always later than ``created_at``);
* first / last solve: the first / last ``status_change`` whose ``value`` is ``solved``; full resolution time is
  last solve minus creation, only while the ticket is solved or closed;
* reopens: ``status_change`` events from ``solved`` or ``closed`` to ``new``, ``open``, ``pending`` or ``hold``;
* replies: ``comment`` events with ``public`` true authored by an agent;
* agent touches: distinct instants at which an agent authored at least one event of the ticket (one update emits
  all its events at one instant, by one author).

Requesters' comments are public but never replies; events by the system (``author_id`` -1) never touch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tenant_analytics.sources.timestamps import parse_timestamp

_DONE_STATUSES: Final = ("solved", "closed")
_OPEN_STATUSES: Final = ("new", "open", "pending", "hold")


@dataclass
class ReplayedTicket:
    """A ticket's state and metrics after replaying its events in ``id`` order."""

    ticket_id: int
    created_at: datetime | None = None
    status: str | None = None
    assignee_id: int | None = None
    priority: str | None = None
    first_reply_at: datetime | None = None
    first_solved_at: datetime | None = None
    last_solved_at: datetime | None = None
    reopens: int = 0
    replies: int = 0
    agent_touch_times: set[datetime] = field(default_factory=set)

    @property
    def agent_touches(self) -> int:
        """Return the number of distinct instants an agent updated the ticket."""
        return len(self.agent_touch_times)

    @property
    def first_reply_seconds(self) -> float | None:
        """Return seconds from creation to the first reply, or None without a reply."""
        if self.created_at is None or self.first_reply_at is None:
            return None
        return (self.first_reply_at - self.created_at).total_seconds()

    @property
    def full_resolution_seconds(self) -> float | None:
        """Return seconds from creation to the last solve while the ticket is solved or closed, else None."""
        if self.created_at is None or self.last_solved_at is None or self.status not in _DONE_STATUSES:
            return None
        return (self.last_solved_at - self.created_at).total_seconds()


def replay_tickets(events: Iterable[dict[str, Any]], agent_ids: Collection[int]) -> dict[int, ReplayedTicket]:
    """Return ticket id -> :class:`ReplayedTicket`, replaying ``events`` in ``id`` order.

    ``agent_ids`` are the ids of users whose role is ``agent`` or ``admin``.
    """
    tickets: dict[int, ReplayedTicket] = {}
    for event in sorted(events, key=lambda item: int(item["id"])):
        ticket = tickets.setdefault(event["ticket_id"], ReplayedTicket(event["ticket_id"]))
        moment = parse_timestamp(event["created_at"])
        kind, value, author = event["event_type"], event.get("value"), event["author_id"]
        by_agent = author in agent_ids
        if by_agent:
            ticket.agent_touch_times.add(moment)
        if kind == "create":
            ticket.created_at, ticket.status = moment, value
        elif kind == "status_change":
            if event.get("previous_value") in _DONE_STATUSES and value in _OPEN_STATUSES:
                ticket.reopens += 1
            if value == "solved":
                ticket.first_solved_at = ticket.first_solved_at or moment
                ticket.last_solved_at = moment
            ticket.status = value
        elif kind == "assignee_change":
            ticket.assignee_id = None if value is None else int(value)
        elif kind == "priority_change":
            ticket.priority = value
        elif kind == "comment" and event.get("public") and by_agent:
            ticket.replies += 1
            ticket.first_reply_at = ticket.first_reply_at or moment
    return tickets

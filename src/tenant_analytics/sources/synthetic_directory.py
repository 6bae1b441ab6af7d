"""Synthetic users, organizations and groups of one tenant: the people and teams its tickets refer to.

Agents (some of them admins) and groups exist before the generated window. End users are ordered by creation:
most existed before the window, the rest sign up during it, and a ticket's requester is always a user created at
or before the ticket. Users and organizations also change during the window; each change is a new
:class:`RecordVersion` whose ``valid_from`` is the record's ``updated_at``.

The directory keeps only two integers per end user (creation second and organization), so tenants with millions
of tickets fit in memory while their events are streamed.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tenant_analytics.sources.timestamps import format_unix, parse_timestamp

AGENT_ID_BASE: Final = 900_001
END_USER_ID_BASE: Final = 1_000_001
ORGANIZATION_ID_BASE: Final = 70_001
GROUP_ID_BASE: Final = 50_001
USER_ROLES: Final = ("end-user", "agent", "admin")

_MAX_AGENTS: Final = 99_999
_DAY_S: Final = 86_400
_END_USER_HISTORY_S: Final = 3 * 365 * _DAY_S
_ORGANIZATION_HISTORY_S: Final = 5 * 365 * _DAY_S
_PRE_WINDOW_USER_SHARE: Final = 0.7
_NO_ORGANIZATION_SHARE: Final = 0.2
_FIRST_NAMES: Final = (
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kemi", "Luca", "Mei",
    "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Vera", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Adams", "Berg", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
    "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Varga", "Weber", "Yilmaz",
)  # fmt: skip
_TIME_ZONES: Final = ("UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata")
_ORG_WORDS: Final = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Adatum", "Proseware")
_ORG_KINDS: Final = ("Traders", "Labs", "Systems", "Foods", "Logistics", "Health", "Media", "Energy")
_GROUP_NAMES: Final = ("Support", "Billing", "Technical", "Escalations", "Onboarding", "Sales")


@dataclass(frozen=True)
class RecordVersion:
    """One version of a user or organization: the JSON served from ``valid_from`` (its ``updated_at``) on.

    ``record`` must be treated as read-only.
    """

    record: dict[str, Any] = field(hash=False)
    valid_from: datetime

    @property
    def record_id(self) -> int:
        """Return the record's ``id``."""
        record_id: int = self.record["id"]
        return record_id


@dataclass(frozen=True)
class TenantDirectory:
    """The users, organizations and groups of one tenant, drawn from ``(seed, tenant_id)`` and the window."""

    tenant_id: str
    seed: int
    start_s: int
    end_s: int
    agents: int
    admins: int
    organizations: int
    groups: int
    end_user_created: array[int] = field(hash=False, compare=False, repr=False)
    end_user_organization: array[int] = field(hash=False, compare=False, repr=False)

    @classmethod
    def draw(cls, seed: int, tenant_id: str, tickets: int, start_s: int, end_s: int) -> TenantDirectory:
        """Size the directory for ``tickets`` tickets created in ``[start_s, end_s)`` and draw its end users."""
        rng = random.Random(f"tenant-analytics-synthetic:{seed}:{tenant_id}:directory")
        end_users = max(5, int(tickets * 0.6))
        organizations = max(2, tickets // 25)
        agents = min(_MAX_AGENTS, max(2, tickets // 80 + 2))
        groups = min(len(_GROUP_NAMES), max(1, tickets // 150 + 1))
        before = min(end_users, max(5, round(end_users * _PRE_WINDOW_USER_SHARE)))
        created = _sorted_uniform_ints(rng, before, start_s - _END_USER_HISTORY_S, start_s)
        created.extend(_sorted_uniform_ints(rng, end_users - before, start_s, end_s))
        organization = array("q", bytes(8 * end_users))
        for index in range(end_users):
            if rng.random() >= _NO_ORGANIZATION_SHARE:
                organization[index] = ORGANIZATION_ID_BASE + rng.randrange(organizations)
        return cls(
            tenant_id=tenant_id,
            seed=seed,
            start_s=start_s,
            end_s=end_s,
            agents=agents,
            admins=max(1, agents // 20),
            organizations=organizations,
            groups=groups,
            end_user_created=created,
            end_user_organization=organization,
        )

    @property
    def agent_ids(self) -> range:
        """Return the ids of the agents and admins (admins first)."""
        return range(AGENT_ID_BASE, AGENT_ID_BASE + self.agents)

    @property
    def group_ids(self) -> range:
        """Return the ids of the groups."""
        return range(GROUP_ID_BASE, GROUP_ID_BASE + self.groups)

    def requester(self, rng: random.Random, at_s: int) -> int:
        """Draw the end user who opens a ticket at ``at_s``: one created by then, skewed to long-standing users."""
        existing = bisect.bisect_right(self.end_user_created, at_s)
        # Squaring skews towards low ids (the oldest users): a few requesters write many tickets.
        return END_USER_ID_BASE + int(existing * rng.random() ** 2)

    def organization_of(self, user_id: int) -> int | None:
        """Return the organization id of an end user, or None."""
        organization = self.end_user_organization[user_id - END_USER_ID_BASE]
        return organization or None

    def iter_user_versions(self) -> Iterator[RecordVersion]:
        """Yield every version of every user, agents first, each user's versions in time order."""
        rng = random.Random(f"tenant-analytics-synthetic:{self.seed}:{self.tenant_id}:users")
        for offset, user_id in enumerate(self.agent_ids):
            created_s = self.start_s - rng.randrange(_DAY_S, 2 * 365 * _DAY_S)
            role = "admin" if offset < self.admins else "agent"
            email = f"agent{offset + 1}@{self.tenant_id}.support.example.com"
            yield from self._user_versions(rng, user_id, created_s, role, email, None, updates=(0.5, 3))
        for index, created_s in enumerate(self.end_user_created):
            user_id = END_USER_ID_BASE + index
            organization = self.organization_of(user_id)
            domain = "mail.example.net" if organization is None else _organization_domain(organization)
            yield from self._user_versions(rng, user_id, created_s, "end-user", domain, organization, updates=(0.2, 2))

    def iter_organization_versions(self) -> Iterator[RecordVersion]:
        """Yield every version of every organization, each organization's versions in time order."""
        rng = random.Random(f"tenant-analytics-synthetic:{self.seed}:{self.tenant_id}:organizations")
        for organization_id in range(ORGANIZATION_ID_BASE, ORGANIZATION_ID_BASE + self.organizations):
            created_s = self.start_s - rng.randrange(30 * _DAY_S, _ORGANIZATION_HISTORY_S)
            record: dict[str, Any] = {
                "url": f"https://{self.tenant_id}.support.example.com/api/v2/organizations/{organization_id}.json",
                "id": organization_id,
                "name": _organization_name(organization_id),
                "domain_names": [_organization_domain(organization_id)],
                "details": "",
                "notes": "",
                "group_id": None,
                "shared_tickets": False,
                "shared_comments": False,
                "tags": [],
                "created_at": format_unix(created_s),
                "updated_at": format_unix(created_s),
            }
            yield _record_version(record)
            for moment in _update_times(rng, created_s, self.start_s, self.end_s, chance=0.35, most=2):
                record = dict(record)
                record["updated_at"] = format_unix(moment)
                if rng.random() < 0.5:
                    record["domain_names"] = [*record["domain_names"], f"{rng.choice(_ORG_WORDS).lower()}.example.org"]
                else:
                    record["tags"] = sorted({*record["tags"], rng.choice(("enterprise", "smb", "trial", "churn_risk"))})
                yield _record_version(record)

    def groups_json(self) -> list[dict[str, Any]]:
        """Return every group; groups exist before the window and do not change in it."""
        rng = random.Random(f"tenant-analytics-synthetic:{self.seed}:{self.tenant_id}:groups")
        groups = []
        for offset, group_id in enumerate(self.group_ids):
            created_s = self.start_s - rng.randrange(60 * _DAY_S, 2 * 365 * _DAY_S)
            updated_s = min(self.start_s - 1, created_s + rng.randrange(0, 30 * _DAY_S))
            groups.append(
                {
                    "url": f"https://{self.tenant_id}.support.example.com/api/v2/groups/{group_id}.json",
                    "id": group_id,
                    "name": _GROUP_NAMES[offset],
                    "description": f"{_GROUP_NAMES[offset]} team",
                    "default": offset == 0,
                    "deleted": False,
                    "created_at": format_unix(created_s),
                    "updated_at": format_unix(updated_s),
                }
            )
        return groups

    def _user_versions(
        self,
        rng: random.Random,
        user_id: int,
        created_s: int,
        role: str,
        email_domain_or_address: str,
        organization: int | None,
        *,
        updates: tuple[float, int],
    ) -> Iterator[RecordVersion]:
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        if "@" in email_domain_or_address:
            email = email_domain_or_address
        else:
            email = f"{first}.{last}.{user_id}@{email_domain_or_address}".lower()
        record: dict[str, Any] = {
            "url": f"https://{self.tenant_id}.support.example.com/api/v2/users/{user_id}.json",
            "id": user_id,
            "name": f"{first} {last}",
            "email": email,
            "role": role,
            "organization_id": organization,
            "active": True,
            "verified": role != "end-user" or rng.random() < 0.7,
            "time_zone": rng.choice(_TIME_ZONES),
            "locale": "en-US",
            "phone": None,
            "tags": [],
            "created_at": format_unix(created_s),
            "updated_at": format_unix(created_s),
        }
        yield _record_version(record)
        chance, most = updates
        for moment in _update_times(rng, created_s, self.start_s, self.end_s, chance=chance, most=most):
            record = dict(record)
            record["updated_at"] = format_unix(moment)
            if rng.random() < 0.5:
                record["time_zone"] = rng.choice(_TIME_ZONES)
            else:
                record["phone"] = f"+1-555-{rng.randrange(10_000):04d}"
            record["verified"] = True
            yield _record_version(record)


def _record_version(record: dict[str, Any]) -> RecordVersion:
    return RecordVersion(record=record, valid_from=parse_timestamp(record["updated_at"]))


def _update_times(
    rng: random.Random, created_s: int, start_s: int, end_s: int, *, chance: float, most: int
) -> list[int]:
    """Draw up to ``most`` distinct update seconds after ``created_s`` inside ``[start_s, end_s)``."""
    if rng.random() >= chance:
        return []
    low = max(created_s + 1, start_s)
    if low >= end_s:
        return []
    return sorted({rng.randrange(low, end_s) for _ in range(rng.randint(1, most))})


def _sorted_uniform_ints(rng: random.Random, count: int, low: int, high: int) -> array[int]:
    """Return ``count`` uniform integers in ``[low, high)``, ascending, without sorting a list of them.

    Walks the order statistics from the largest down (the largest of n uniforms is ``U ** (1/n)``), so memory
    stays at one machine integer per value.
    """
    values = array("q", bytes(8 * count))
    top = 1.0
    for remaining in range(count, 0, -1):
        top *= rng.random() ** (1.0 / remaining)
        values[remaining - 1] = min(high - 1, low + int(top * (high - low)))
    return values


def _organization_name(organization_id: int) -> str:
    index = organization_id - ORGANIZATION_ID_BASE
    word, kind = _ORG_WORDS[index % len(_ORG_WORDS)], _ORG_KINDS[(index // len(_ORG_WORDS)) % len(_ORG_KINDS)]
    return f"{word} {kind} {index + 1}"


def _organization_domain(organization_id: int) -> str:
    return _organization_name(organization_id).lower().replace(" ", "-") + ".example.com"

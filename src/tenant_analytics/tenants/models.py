"""The tenant record kept in the registry."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, TypeGuard

from pydantic import AfterValidator, BaseModel, Field

# The one definition of a tenant id, for every layer that checks one (registry, token, SQL, change stream).
TENANT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")
TENANT_ID_RULE = "use 2-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"


def is_tenant_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a tenant id: the whole string matches (a trailing newline does not pass)."""
    return isinstance(value, str) and TENANT_ID_PATTERN.fullmatch(value) is not None


def _check_tenant_id(value: str) -> str:
    if not is_tenant_id(value):
        raise ValueError(f"tenant id {value!r} is not allowed: {TENANT_ID_RULE}")
    return value


TenantId = Annotated[str, AfterValidator(_check_tenant_id)]


class Tier(StrEnum):
    AURORA = "aurora"
    REDSHIFT = "redshift"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    MIGRATING = "migrating"
    FAILED = "failed"


class Tenant(BaseModel):
    """One tenant: where its data lives, where it comes from, how fresh it is."""

    tenant_id: TenantId
    tier: Tier
    store: str = Field(description="store id, a key of Settings.stores")
    status: TenantStatus = TenantStatus.ACTIVE
    source_url: str
    size_rows: int = Field(default=0, ge=0)
    data_version: int = Field(default=0, ge=0)
    since: datetime | None = Field(default=None, description="first export starts here instead of the beginning")
    credentials_secret: str | None = Field(
        default=None, description="Secrets Manager secret with the source API's {email, api_token}, if it needs one"
    )
    loaded_through: datetime | None = None
    last_error: str | None = None
    usage_plan: str | None = Field(default=None, description="the usage plan its API key is attached to")
    api_key_id: str | None = Field(default=None, description="API Gateway id of its API key")
    # The key's value identifies the tenant to its usage plan; kept in the registry item, left out of dumps.
    api_key_value: str | None = Field(default=None, exclude=True, repr=False)
    created_at: datetime
    updated_at: datetime

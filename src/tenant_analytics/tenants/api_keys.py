"""Per-tenant throttling: each tenant gets an API Gateway API key attached to the usage plan of its tier.

The API takes its key from the authorizer (API key source AUTHORIZER), which returns the tenant's key value
as ``usageIdentifierKey``; callers never send a key. The value is kept in the registry item so the authorizer
never calls API Gateway per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tenant_analytics import constants as c
from tenant_analytics.aws import clients
from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import Settings
from tenant_analytics.tenants.models import Tier


@dataclass(frozen=True)
class TenantApiKey:
    """A tenant's API key: its id, its value (the usage identifier) and the usage plan it is attached to."""

    key_id: str
    value: str
    usage_plan: str


def usage_plan_of(tier: Tier) -> str:
    """The usage plan name of a tier (``standard`` for Aurora tenants, ``large`` for Redshift tenants)."""
    return c.USAGE_PLAN_BY_TIER[tier.value]


class UsagePlanKeys:
    """Creates tenants' API keys and attaches them to usage plans, through the API Gateway API."""

    def __init__(self, apigateway: Any, plan_ids: dict[str, str]) -> None:
        self._apigateway = apigateway
        self._plan_ids = plan_ids

    def plan_id(self, plan: str) -> str:
        """The usage plan id of ``plan``; raise InvalidInput naming the setting when it is not configured."""
        plan_id = self._plan_ids.get(plan)
        if not plan_id:
            raise InvalidInput(
                f"no usage plan '{plan}' is configured: set {c.ENV_USAGE_PLAN_IDS} to the stack output"
                f" UsagePlanIds (configured: {sorted(self._plan_ids) or 'none'})",
                field="usage_plan_ids",
            )
        return plan_id

    def create(self, tenant_id: str, tier: Tier) -> TenantApiKey:
        """Create the tenant's key and attach it to its tier's plan; a key that cannot be attached is deleted."""
        plan = usage_plan_of(tier)
        plan_id = self.plan_id(plan)
        key = self._apigateway.create_api_key(
            name=f"{c.API_KEY_NAME_PREFIX}{tenant_id}",
            description=f"usage identifier of tenant {tenant_id} ({plan} plan)",
            enabled=True,
            tags={"project": c.PROJECT, "tenant_id": tenant_id},
        )
        try:
            self._apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
        except (ClientError, BotoCoreError):
            self.delete(key["id"])
            raise
        return TenantApiKey(key_id=key["id"], value=key["value"], usage_plan=plan)

    def move(self, key_id: str, from_plan: str, to_tier: Tier) -> str:
        """Attach a key to ``to_tier``'s plan, then detach it from ``from_plan``; return the new plan's name."""
        plan = usage_plan_of(to_tier)
        self._apigateway.create_usage_plan_key(usagePlanId=self.plan_id(plan), keyId=key_id, keyType="API_KEY")
        try:
            self._apigateway.delete_usage_plan_key(usagePlanId=self.plan_id(from_plan), keyId=key_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise
        return plan

    def delete(self, key_id: str) -> None:
        """Delete a key (and with it its plan membership); a key already gone is not an error."""
        try:
            self._apigateway.delete_api_key(apiKey=key_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise


def usage_plan_keys(settings: Settings) -> UsagePlanKeys | None:
    """The key provisioner of this deployment, or None when no usage plan is configured (local default)."""
    if not settings.usage_plan_ids:
        return None
    return UsagePlanKeys(clients.client("apigateway"), settings.usage_plan_ids)

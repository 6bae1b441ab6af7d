"""TenantRegistry: the DynamoDB table of tenants (tier, store, status, size, data_version)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from tenant_analytics.constants import SOURCE_SECRETS_PREFIX
from tenant_analytics.errors import InvalidInput, TenantExists, UnknownTenant
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.api_keys import UsagePlanKeys, usage_plan_of
from tenant_analytics.tenants.models import TENANT_ID_RULE, Tenant, TenantStatus, Tier, is_tenant_id
from tenant_analytics.tenants.placement import StoreLoad, choose_store, choose_tier

# The statuses the hourly runs own: a run's outcome sets them; any other status was set by an operator (or a move).
RUNNABLE_STATUSES = (TenantStatus.ACTIVE, TenantStatus.FAILED)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# A Secrets Manager secret name under the prefix, by name or by ARN (the characters Secrets Manager allows).
_SOURCE_SECRET = re.compile(
    rf"(arn:[a-z-]+:secretsmanager:[a-z0-9-]+:\d{{12}}:secret:)?{re.escape(SOURCE_SECRETS_PREFIX)}[A-Za-z0-9/_+=.@-]+"
)


def _check_source_url(source_url: str) -> None:
    if not source_url.startswith(("http://", "https://")):
        raise InvalidInput(f"source URL '{source_url}' must start with http:// or https://", field="source_url")
    if any(ch.isspace() or not ch.isprintable() for ch in source_url):
        raise InvalidInput(
            f"source URL {source_url!r} contains spaces or control characters; percent-encode them", field="source_url"
        )
    parts = urlsplit(source_url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise InvalidInput(f"source URL '{source_url}' has an invalid port: {exc}", field="source_url") from exc
    if not parts.hostname:
        raise InvalidInput(
            f"source URL '{source_url}' names no host (e.g. https://source.example.com/api)", field="source_url"
        )


def _check_since(since: datetime | None, now: datetime) -> None:
    if since is None:
        return
    if since.tzinfo is None:
        raise InvalidInput(f"since {since.isoformat()} needs a UTC offset (e.g. 2026-01-31T00:00:00Z)", field="since")
    if since > now:
        raise InvalidInput(
            f"since {since.isoformat()} lies in the future; the first export must start at or before now"
            f" ({now.isoformat()})",
            field="since",
        )


def _check_credentials_secret(secret: str | None) -> None:
    if secret is not None and not _SOURCE_SECRET.fullmatch(secret):
        raise InvalidInput(
            f"credentials secret {secret!r} cannot be read by the export function: name a secret under"
            f" '{SOURCE_SECRETS_PREFIX}' (e.g. {SOURCE_SECRETS_PREFIX}acme)",
            field="credentials_secret",
        )


def _to_item(tenant: Tenant) -> dict[str, Any]:
    item = {k: v for k, v in tenant.model_dump(mode="json").items() if v is not None}
    if tenant.api_key_value is not None:  # excluded from dumps, stored for the authorizer
        item["api_key_value"] = tenant.api_key_value
    return item


class TenantRegistry:
    """Reads and writes tenant records; places new tenants on the store with most headroom.

    With ``api_keys`` (usage plans configured) a new tenant also gets an API key on its tier's usage plan.
    """

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        stores: dict[str, StoreConfig],
        budgets: PlacementBudgets,
        api_keys: UsagePlanKeys | None = None,
    ) -> None:
        self._table = dynamodb.Table(table_name)
        self._stores = stores
        self._budgets = budgets
        self._api_keys = api_keys

    def add(
        self,
        tenant_id: str,
        source_url: str,
        *,
        tier: Tier | None = None,
        since: datetime | None = None,
        expected_rows: int = 0,
        credentials_secret: str | None = None,
    ) -> Tenant:
        """Register a tenant on the store with most headroom (and its API key); raise TenantExists if taken,
        InvalidInput naming the field for a bad id, source URL, ``since`` (future or without offset) or a credentials
        secret the export function cannot read."""
        if not is_tenant_id(tenant_id):
            raise InvalidInput(
                f"tenant id {tenant_id!r} is not allowed: {TENANT_ID_RULE}",
                field="tenant_id",
            )
        _check_source_url(source_url)
        _check_since(since, _now())
        _check_credentials_secret(credentials_secret)
        chosen_tier = choose_tier(expected_rows, self._budgets, tier)
        store = choose_store(chosen_tier, expected_rows, self._stores, self.store_loads(), self._budgets)
        if self._api_keys is not None and self._exists(tenant_id):
            raise TenantExists(f"tenant '{tenant_id}' is already registered")  # before a key is created for it
        key = self._api_keys.create(tenant_id, chosen_tier) if self._api_keys is not None else None
        now = _now()
        tenant = Tenant(
            tenant_id=tenant_id,
            tier=chosen_tier,
            store=store,
            source_url=source_url.rstrip("/"),
            size_rows=expected_rows,
            since=since,
            credentials_secret=credentials_secret,
            usage_plan=key.usage_plan if key else None,
            api_key_id=key.key_id if key else None,
            api_key_value=key.value if key else None,
            created_at=now,
            updated_at=now,
        )
        try:
            self._table.put_item(Item=_to_item(tenant), ConditionExpression=Attr("tenant_id").not_exists())
        except ClientError as exc:
            if self._api_keys is not None and key is not None:
                self._api_keys.delete(key.key_id)  # registered by a concurrent call meanwhile: no orphan key
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TenantExists(f"tenant '{tenant_id}' is already registered") from exc
            raise
        return tenant

    def ensure_api_key(self, tenant_id: str) -> Tenant:
        """Give a tenant registered before usage plans its API key, or move its key to its tier's plan.

        Raise InvalidInput when no usage plans are configured, UnknownTenant when the tenant is absent.
        """
        if self._api_keys is None:
            raise InvalidInput("no usage plans are configured: set USAGE_PLAN_IDS", field="usage_plan_ids")
        tenant = self.get(tenant_id)
        if tenant.api_key_id is None:
            key = self._api_keys.create(tenant_id, tenant.tier)
            try:
                return self._update(
                    tenant_id,
                    "SET api_key_id = :i, api_key_value = :v, usage_plan = :p, updated_at = :u",
                    {},
                    {":i": key.key_id, ":v": key.value, ":p": key.usage_plan, ":u": _now().isoformat()},
                    condition=Attr("tenant_id").exists() & Attr("api_key_id").not_exists(),
                )
            except UnknownTenant:
                # removed, or given a key by a concurrent call, meanwhile: keep what is there (or raise)
                self._api_keys.delete(key.key_id)
                return self.get(tenant_id)
        if tenant.usage_plan == usage_plan_of(tenant.tier):
            return tenant
        plan = self._api_keys.move(tenant.api_key_id, tenant.usage_plan or usage_plan_of(tenant.tier), tenant.tier)
        values = {":p": plan, ":u": _now().isoformat()}
        return self._update(tenant_id, "SET usage_plan = :p, updated_at = :u", {}, values)

    def _exists(self, tenant_id: str) -> bool:
        return "Item" in self._table.get_item(Key={"tenant_id": tenant_id}, ProjectionExpression="tenant_id")

    def get(self, tenant_id: str) -> Tenant:
        """Return the tenant or raise UnknownTenant."""
        if not is_tenant_id(tenant_id):
            raise UnknownTenant(tenant_id)  # never registered; and DynamoDB refuses some such keys (empty, too long)
        item = self._table.get_item(Key={"tenant_id": tenant_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise UnknownTenant(tenant_id)
        return Tenant.model_validate(item)

    def list(self, *, status: TenantStatus | None = None) -> list[Tenant]:
        """Return all tenants (optionally of one status), ordered by id."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self._table.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        tenants = [Tenant.model_validate(i) for i in items]
        if status is not None:
            tenants = [t for t in tenants if t.status is status]
        return sorted(tenants, key=lambda t: t.tenant_id)

    def store_loads(self) -> dict[str, StoreLoad]:
        """Tenants and rows per store, for placement."""
        loads: dict[str, StoreLoad] = {}
        for tenant in self.list():
            prev = loads.get(tenant.store, StoreLoad(tenant.store, 0, 0))
            loads[tenant.store] = StoreLoad(tenant.store, prev.tenants + 1, prev.rows + tenant.size_rows)
        return loads

    def set_status(self, tenant_id: str, status: TenantStatus, *, error: str | None = None) -> Tenant:
        """Set a tenant's status (and last error, cleared when None); raise UnknownTenant if absent."""
        names = {"#s": "status", "#u": "updated_at"}
        values: dict[str, Any] = {":s": status.value, ":u": _now().isoformat()}
        expr = "SET #s = :s, #u = :u"
        if error is None:
            expr += " REMOVE last_error"
        else:
            expr += ", last_error = :e"
            values[":e"] = error[:1000]
        return self._update(tenant_id, expr, names, values)

    def record_load(self, tenant_id: str, *, size_rows: int, loaded_through: datetime) -> Tenant:
        """After a successful load: data_version += 1, new size and freshness, error cleared, status active (unless
        the tenant was suspended or is migrating meanwhile, see :meth:`_record_run`)."""
        return self._record_run(
            tenant_id,
            "SET size_rows = :r, loaded_through = :t, updated_at = :u",
            {":r": size_rows, ":t": loaded_through.isoformat(), ":u": _now().isoformat(), ":one": 1},
            TenantStatus.ACTIVE,
            then=" ADD data_version :one REMOVE last_error",
        )

    def record_fresh(self, tenant_id: str, *, loaded_through: datetime) -> Tenant:
        """A run found nothing new: the data is current through ``loaded_through``; data_version unchanged."""
        return self._record_run(
            tenant_id,
            "SET loaded_through = :t, updated_at = :u",
            {":t": loaded_through.isoformat(), ":u": _now().isoformat()},
            TenantStatus.ACTIVE,
            then=" REMOVE last_error",
        )

    def record_failure(self, tenant_id: str, error: str) -> Tenant:
        """A run failed for the tenant: status failed (the next run retries it) and ``error`` as its last error."""
        return self._record_run(
            tenant_id,
            "SET last_error = :e, updated_at = :u",
            {":e": error[:1000], ":u": _now().isoformat()},
            TenantStatus.FAILED,
        )

    def _record_run(
        self, tenant_id: str, sets: str, values: dict[str, Any], status: TenantStatus, *, then: str = ""
    ) -> Tenant:
        """Record a run's outcome. The status becomes ``status`` only while the runs own the tenant (it is active or
        failed): one suspended, or moved to another store, while its run was in flight keeps that status, or the
        run's outcome would silently resume it."""
        owned = Attr("tenant_id").exists() & Attr("status").is_in([s.value for s in RUNNABLE_STATUSES])
        try:
            return self._update(
                tenant_id,
                f"{sets}, #s = :status{then}",
                {"#s": "status"},
                {**values, ":status": status.value},
                condition=owned,
            )
        except UnknownTenant:  # absent, or no longer run by the pipeline: record the outcome, keep the status
            return self._update(tenant_id, f"{sets}{then}", {}, values)

    def _update(
        self,
        tenant_id: str,
        expr: str,
        names: dict[str, str],
        values: dict[str, Any],
        *,
        condition: Any = None,
    ) -> Tenant:
        kwargs: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        try:
            resp = self._table.update_item(
                Key={"tenant_id": tenant_id},
                UpdateExpression=expr,
                ExpressionAttributeValues=values,
                ConditionExpression=condition if condition is not None else Attr("tenant_id").exists(),
                ReturnValues="ALL_NEW",
                **kwargs,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise UnknownTenant(tenant_id) from exc
            raise
        return Tenant.model_validate(resp["Attributes"])

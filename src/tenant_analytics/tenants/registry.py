"""TenantRegistry: the DynamoDB table of tenants (tier, store, status, size, data_version)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from tenant_analytics.errors import InvalidInput, TenantExists, UnknownTenant
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.models import TENANT_ID_PATTERN, Tenant, TenantStatus, Tier
from tenant_analytics.tenants.placement import StoreLoad, choose_store, choose_tier


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _to_item(tenant: Tenant) -> dict[str, Any]:
    return {k: v for k, v in tenant.model_dump(mode="json").items() if v is not None}


class TenantRegistry:
    """Reads and writes tenant records; places new tenants on the store with most headroom."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        stores: dict[str, StoreConfig],
        budgets: PlacementBudgets,
    ) -> None:
        self._table = dynamodb.Table(table_name)
        self._stores = stores
        self._budgets = budgets

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
        """Register a tenant on the store with most headroom; raise TenantExists if the id is taken."""
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise InvalidInput(
                f"tenant id '{tenant_id}' is not allowed: use 2-63 characters of a-z, 0-9, '-' or '_', "
                "starting with a letter or digit",
                field="tenant_id",
            )
        if not source_url.startswith(("http://", "https://")):
            raise InvalidInput(f"source URL '{source_url}' must start with http:// or https://", field="source_url")
        chosen_tier = choose_tier(expected_rows, self._budgets, tier)
        store = choose_store(chosen_tier, expected_rows, self._stores, self.store_loads(), self._budgets)
        now = _now()
        tenant = Tenant(
            tenant_id=tenant_id,
            tier=chosen_tier,
            store=store,
            source_url=source_url.rstrip("/"),
            size_rows=expected_rows,
            since=since,
            credentials_secret=credentials_secret,
            created_at=now,
            updated_at=now,
        )
        try:
            self._table.put_item(Item=_to_item(tenant), ConditionExpression=Attr("tenant_id").not_exists())
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TenantExists(f"tenant '{tenant_id}' is already registered") from exc
            raise
        return tenant

    def get(self, tenant_id: str) -> Tenant:
        """Return the tenant or raise UnknownTenant."""
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
        """After a successful load: data_version += 1, new size and freshness, error cleared, status active."""
        return self._update(
            tenant_id,
            "SET size_rows = :r, loaded_through = :t, updated_at = :u, #s = :a ADD data_version :one REMOVE last_error",
            {"#s": "status"},
            {
                ":r": size_rows,
                ":t": loaded_through.isoformat(),
                ":u": _now().isoformat(),
                ":a": TenantStatus.ACTIVE.value,
                ":one": 1,
            },
        )

    def record_fresh(self, tenant_id: str, *, loaded_through: datetime) -> Tenant:
        """A run found nothing new: the data is current through ``loaded_through``; data_version unchanged."""
        return self._update(
            tenant_id,
            "SET loaded_through = :t, updated_at = :u, #s = :a REMOVE last_error",
            {"#s": "status"},
            {":t": loaded_through.isoformat(), ":u": _now().isoformat(), ":a": TenantStatus.ACTIVE.value},
        )

    def _update(self, tenant_id: str, expr: str, names: dict[str, str], values: dict[str, Any]) -> Tenant:
        try:
            resp = self._table.update_item(
                Key={"tenant_id": tenant_id},
                UpdateExpression=expr,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ConditionExpression=Attr("tenant_id").exists(),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise UnknownTenant(tenant_id) from exc
            raise
        return Tenant.model_validate(resp["Attributes"])

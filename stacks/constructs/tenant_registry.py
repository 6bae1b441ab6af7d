"""DynamoDB tables of the tenant registry: tenants, export cursors, idempotency records, query cache."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from tenant_analytics import constants as c

_S = dynamodb.AttributeType.STRING


class TenantRegistryTables(Construct):
    """On-demand tables on the customer-managed key, with point-in-time recovery."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.tenants = self._table("Tenants", c.TENANTS_TABLE, key, c.TENANTS_TABLE_KEY)
        self.cursors = self._table(
            "Cursors", c.CURSORS_TABLE, key, c.CURSORS_TABLE_KEY, sort_key=c.CURSORS_TABLE_SORT_KEY
        )
        self.idempotency = self._table(
            "Idempotency", c.IDEMPOTENCY_TABLE, key, c.IDEMPOTENCY_TABLE_KEY, ttl=c.IDEMPOTENCY_TTL_ATTRIBUTE
        )
        self.query_cache = self._table("QueryCache", c.CACHE_TABLE, key, c.CACHE_TABLE_KEY, ttl=c.CACHE_TTL_ATTRIBUTE)

    def _table(
        self,
        construct_id: str,
        name: str,
        key: kms.IKey,
        partition_key: str,
        *,
        sort_key: str | None = None,
        ttl: str | None = None,
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name=partition_key, type=_S),
            sort_key=dynamodb.Attribute(name=sort_key, type=_S) if sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )


# What the table's customer-managed key must allow for reading items, and in addition for writing them.
_KEY_READ = ("kms:Decrypt", "kms:DescribeKey")
_KEY_WRITE = ("kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")


def grant_item_calls(table: dynamodb.ITable, grantee: iam.IGrantable, *calls: str) -> None:
    """Let ``grantee`` make exactly these item calls (``GetItem``, ``UpdateItem``, ...) on ``table``, with the key
    rights they need: narrower than ``grant_read_data`` (which adds Scan and Query, reading every tenant's item,
    API keys included) and ``grant_read_write_data`` (which adds DeleteItem and batch writes)."""
    table.grant(grantee, *(f"dynamodb:{call}" for call in calls))
    if table.encryption_key is not None:
        writes = any(not call.startswith(("Get", "BatchGet", "Query", "Scan")) for call in calls)
        table.encryption_key.grant(grantee, *_KEY_READ, *(_KEY_WRITE if writes else ()))

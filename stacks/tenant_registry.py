"""Tenant registry stack: the DynamoDB tables."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from .constructs.tenant_registry import TenantRegistryTables


class TenantRegistryStack(Stack):
    """Tenants, cursors, idempotency and query-cache tables."""

    def __init__(self, scope: Construct, construct_id: str, *, data_key: kms.IKey, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.tables = TenantRegistryTables(self, "Tables", key=data_key)

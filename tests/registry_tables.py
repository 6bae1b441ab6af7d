"""The registry's DynamoDB tables as the TenantRegistry stack defines them, for tests on moto."""

from __future__ import annotations

from typing import Any


def create_tenants_table(dynamodb: Any, name: str = "tenants") -> None:
    """Create the tenants table (key ``tenant_id``) with ``dynamodb``, a boto3 client or resource."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def create_cursors_table(dynamodb: Any, name: str = "cursors") -> None:
    """Create the cursors table (key ``tenant_id``, ``stream``) with ``dynamodb``, a boto3 client or resource."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "stream", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "tenant_id", "AttributeType": "S"},
            {"AttributeName": "stream", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )

"""Export cursors per (tenant, stream), kept in DynamoDB and advanced only after the page they follow is in S3."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from tenant_analytics.errors import TenantAnalyticsError


class CursorState(BaseModel):
    """Where a tenant's export of one stream stands.

    Landed pages are numbered; ``next_seq`` is the number the next page gets and ``loaded_seq`` the last
    page merged into the store, so pages ``loaded_seq < seq < next_seq`` are landed but not yet loaded.
    """

    tenant_id: str
    stream: str
    cursor: str | None = None
    next_seq: int = Field(default=1, ge=1)
    loaded_seq: int = Field(default=0, ge=0)
    version: int = Field(default=0, ge=0, description="optimistic-lock counter, +1 per advance")


class ConcurrentExport(TenantAnalyticsError):
    """Two exports of the same tenant ran at once; the later one stops without writing a cursor."""

    code = "concurrent_export"
    http_status = 409


class CursorStore:
    """Conditional reads and writes of CursorState items (key: tenant_id, stream)."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._table = dynamodb.Table(table_name)

    def get(self, tenant_id: str, stream: str) -> CursorState:
        item = self._table.get_item(Key={"tenant_id": tenant_id, "stream": stream}, ConsistentRead=True).get("Item")
        if item is None:
            return CursorState(tenant_id=tenant_id, stream=stream)
        return CursorState.model_validate(item)

    def advance(self, state: CursorState, *, cursor: str | None, landed_page: bool) -> CursorState:
        """Store the new cursor (and the page count) if nobody else moved it since ``state`` was read."""
        new = state.model_copy(
            update={
                "cursor": cursor,
                "next_seq": state.next_seq + (1 if landed_page else 0),
                "version": state.version + 1,
            }
        )
        condition = Attr("version").not_exists() if state.version == 0 else Attr("version").eq(state.version)
        try:
            self._table.put_item(Item=new.model_dump(exclude_none=True), ConditionExpression=condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentExport(
                    f"the {state.stream} cursor of tenant '{state.tenant_id}' moved during this export; "
                    "another run is active"
                ) from exc
            raise
        return new

    def mark_loaded(self, tenant_id: str, stream: str, loaded_seq: int) -> None:
        """Record that every page up to ``loaded_seq`` is merged into the store (never moves backwards)."""
        try:
            self._table.update_item(
                Key={"tenant_id": tenant_id, "stream": stream},
                UpdateExpression="SET loaded_seq = :s",
                ConditionExpression=Attr("tenant_id").exists() & Attr("loaded_seq").lt(loaded_seq),
                ExpressionAttributeValues={":s": loaded_seq},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

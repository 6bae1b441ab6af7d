"""Redshift store, through the Redshift Data API (no driver, no connection pool, IAM-authenticated).

Control statements and loads run as Data API batches (a batch is one transaction); reads run as single
statements with named parameters. Loads COPY the tenant's curated CSV files from S3 into a staging table
and MERGE the newest version of each ticket into the facts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlglot import exp

from tenant_analytics.errors import InvalidInput, StoreUnavailable
from tenant_analytics.settings import StoreConfig
from tenant_analytics.stores.base import CuratedFiles, MergeStats
from tenant_analytics.tenants.models import TENANT_ID_PATTERN
from tenant_analytics.transforms.columns import TICKET_FACT_COLUMNS

_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9_./=-]+/$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")

SCHEMA_SQL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS support",
    """CREATE TABLE IF NOT EXISTS support.tickets (
    tenant_id       VARCHAR(63)  NOT NULL,
    ticket_id       BIGINT       NOT NULL,
    created_at      TIMESTAMPTZ  NOT NULL,
    updated_at      TIMESTAMPTZ  NOT NULL,
    status          VARCHAR(32),
    priority        VARCHAR(32),
    channel         VARCHAR(32),
    requester_id    BIGINT,
    assignee_id     BIGINT,
    group_id        BIGINT,
    organization_id BIGINT,
    loaded_at       TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, ticket_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, created_at)""",
)


# The curated files carry no tenant column: the stage has the file's columns only, all nullable.
_STAGE_TYPES = {
    "ticket_id": "BIGINT",
    "created_at": "TIMESTAMPTZ",
    "updated_at": "TIMESTAMPTZ",
    "status": "VARCHAR(32)",
    "priority": "VARCHAR(32)",
    "channel": "VARCHAR(32)",
    "requester_id": "BIGINT",
    "assignee_id": "BIGINT",
    "group_id": "BIGINT",
    "organization_id": "BIGINT",
}


def merge_statements(tenant_id: str, uri_prefix: str, iam_role_arn: str) -> list[str]:
    """The load batch for one tenant.

    A Data API batch takes no parameters, so the three values are validated against strict patterns and then
    quoted by sqlglot; every identifier is a constant of this module.
    """
    if not TENANT_ID_PATTERN.match(tenant_id):
        raise InvalidInput(f"tenant id '{tenant_id}' is not allowed", field="tenant_id")
    if not _S3_PREFIX.match(uri_prefix):
        raise InvalidInput(f"'{uri_prefix}' is not an s3://bucket/prefix/ of curated files", field="uri_prefix")
    if not _IAM_ROLE.match(iam_role_arn):
        raise InvalidInput(f"'{iam_role_arn}' is not an IAM role ARN", field="copy_role_arn")
    tenant = exp.Literal.string(tenant_id).sql(dialect="redshift")
    cols = ", ".join(TICKET_FACT_COLUMNS)
    newest = ", ".join(f"s.{c}" for c in TICKET_FACT_COLUMNS)
    updates = ", ".join(f"{c} = n.{c}" for c in TICKET_FACT_COLUMNS[1:])
    return [
        f"CREATE TEMP TABLE stage_tickets ({', '.join(f'{c} {_STAGE_TYPES[c]}' for c in TICKET_FACT_COLUMNS)})",
        (
            f"COPY stage_tickets ({cols}) FROM {exp.Literal.string(uri_prefix).sql(dialect='redshift')} "
            f"IAM_ROLE {exp.Literal.string(iam_role_arn).sql(dialect='redshift')} "
            "FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL"
        ),
        (
            f"CREATE TEMP TABLE newest_tickets AS SELECT {newest} FROM ("  # noqa: S608 - validated, quoted
            f"SELECT *, ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY updated_at DESC) AS rn "
            f"FROM stage_tickets) AS s LEFT JOIN support.tickets AS t "
            f"ON t.tenant_id = {tenant} AND t.ticket_id = s.ticket_id "
            f"WHERE s.rn = 1 AND (t.ticket_id IS NULL OR t.updated_at <= s.updated_at)"
        ),
        (
            "CREATE TEMP TABLE merge_stats AS SELECT "  # noqa: S608 - validated, quoted
            "(SELECT COUNT(*) FROM stage_tickets) AS rows_in, "
            f"(SELECT COUNT(*) FROM newest_tickets AS n WHERE NOT EXISTS (SELECT 1 FROM support.tickets AS t "
            f"WHERE t.tenant_id = {tenant} AND t.ticket_id = n.ticket_id)) AS inserted, "
            "(SELECT COUNT(*) FROM newest_tickets) AS touched"
        ),
        (
            f"MERGE INTO support.tickets USING newest_tickets AS n "  # noqa: S608 - validated, quoted
            f"ON support.tickets.tenant_id = {tenant} AND support.tickets.ticket_id = n.ticket_id "
            f"WHEN MATCHED THEN UPDATE SET {updates}, loaded_at = SYSDATE "
            f"WHEN NOT MATCHED THEN INSERT (tenant_id, {cols}, loaded_at) "
            f"VALUES ({tenant}, {', '.join('n.' + c for c in TICKET_FACT_COLUMNS)}, SYSDATE)"
        ),
        (
            "SELECT rows_in, inserted, touched - inserted AS updated, "  # noqa: S608 - validated, quoted
            f"(SELECT COUNT(*) FROM support.tickets WHERE tenant_id = {tenant}) AS size_rows FROM merge_stats"
        ),
    ]


def _cell(field: dict[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    for key in ("longValue", "doubleValue", "booleanValue", "stringValue"):
        if key in field:
            return field[key]
    return None


def _param(name: str, value: Any) -> dict[str, str]:
    if isinstance(value, datetime | date):
        return {"name": name, "value": value.isoformat()}
    if isinstance(value, bool):
        return {"name": name, "value": "true" if value else "false"}
    return {"name": name, "value": str(value)}


class RedshiftDataStore:
    """AnalyticsStore over a Redshift Serverless workgroup, spoken to through the Data API."""

    dialect = "redshift"

    def __init__(
        self,
        store_id: str,
        cfg: StoreConfig,
        client: Any,
        *,
        poll_seconds: float = 0.25,
        timeout_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not cfg.workgroup_name:
            raise InvalidInput(f"redshift store '{store_id}' needs 'workgroup_name'", field="stores")
        self.store_id = store_id
        self._cfg = cfg
        self._client = client
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep

    def _target(self) -> dict[str, str]:
        target = {"WorkgroupName": self._cfg.workgroup_name or "", "Database": self._cfg.database}
        if self._cfg.secret_arn:
            target["SecretArn"] = self._cfg.secret_arn
        return target

    def _wait(self, statement_id: str) -> dict[str, Any]:
        waited = 0.0
        while True:
            desc: dict[str, Any] = self._client.describe_statement(Id=statement_id)
            status = desc["Status"]
            if status == "FINISHED":
                return desc
            if status in ("FAILED", "ABORTED"):
                raise StoreUnavailable(f"store '{self.store_id}': statement {status.lower()}: {desc.get('Error', '')}")
            if waited >= self._timeout:
                self._client.cancel_statement(Id=statement_id)
                raise StoreUnavailable(f"store '{self.store_id}': statement still {status} after {self._timeout:.0f} s")
            self._sleep(self._poll)
            waited += self._poll

    def _rows(self, statement_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        kwargs: dict[str, str] = {"Id": statement_id}
        while True:
            page = self._client.get_statement_result(**kwargs)
            columns = columns or [c["name"] for c in page.get("ColumnMetadata", [])]
            rows.extend(tuple(_cell(f) for f in record) for record in page.get("Records", []))
            if not page.get("NextToken"):
                return columns, rows
            kwargs["NextToken"] = page["NextToken"]

    def ensure_schema(self) -> None:
        started = self._client.batch_execute_statement(Sqls=list(SCHEMA_SQL), **self._target())
        self._wait(started["Id"])

    def merge_tickets(self, tenant_id: str, files: CuratedFiles) -> MergeStats:
        if files.uri_prefix is None:
            raise InvalidInput("a Redshift load reads its files from S3: the files need a uri_prefix")
        if not self._cfg.copy_role_arn:
            raise InvalidInput(f"redshift store '{self.store_id}' needs 'copy_role_arn' to COPY", field="stores")
        sqls = merge_statements(tenant_id, files.uri_prefix, self._cfg.copy_role_arn)
        started = self._client.batch_execute_statement(Sqls=sqls, **self._target())
        desc = self._wait(started["Id"])
        last = desc["SubStatements"][-1]["Id"]
        _, rows = self._rows(last)
        rows_in, inserted, updated, size = (int(v) for v in rows[0])
        return MergeStats(rows_in=rows_in, inserted=inserted, updated=updated, size_rows=size)

    def query(self, tenant_id: str, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        parameters = [_param(f"p{i}", v) for i, v in enumerate(params, start=1)]
        kwargs: dict[str, Any] = {"Sql": sql, **self._target()}
        if parameters:
            kwargs["Parameters"] = parameters
        started = self._client.execute_statement(**kwargs)
        self._wait(started["Id"])
        return self._rows(started["Id"])

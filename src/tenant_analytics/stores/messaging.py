"""Messaging tables on both tiers: ``messaging.events``, ``messaging.campaigns``, ``messaging.templates``.

The sent stream and the receipt stream land in the one events table keyed by ``(tenant_id, message_id,
event_type)``, so a model joins them by grouping on ``message_id``. Events are immutable facts: landing one again
changes nothing. Campaigns and templates are master data: the version with the later ``updated_at`` wins.

PostgreSQL (Aurora, and the local stand-in): the schema is owned by the ETL role, every table has row-level
security FORCEd with the ``tenant_isolation`` policy of :mod:`tenant_analytics.stores.postgres`, the query role
may only SELECT. A tenant's load is one transaction: COPY into temporary staging tables, then
``INSERT ... ON CONFLICT``. Redshift: base tables are reachable by the ETL role only (row-level security sits on
the views the query role reads); a load is one Data API batch of COPY-from-manifest and MERGE statements.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, field_validator
from sqlglot import exp

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.messaging import (
    EVENT_TYPES,
    CampaignVersion,
    MessageEvent,
    TemplateVersion,
    format_event_time,
)
from tenant_analytics.stores.roles import ETL_ROLE, QUERY_ROLE, ROLES_SQL, tenant_isolation
from tenant_analytics.tenants.models import TENANT_ID_RULE, is_tenant_id

__all__ = [
    "CAMPAIGN_CSV_COLUMNS",
    "EVENT_CSV_COLUMNS",
    "MESSAGING_TABLES",
    "REDSHIFT_ETL_ROLE",
    "REDSHIFT_SCHEMA_SQL",
    "SCHEMA",
    "TEMPLATE_CSV_COLUMNS",
    "MessagingManifests",
    "MessagingMergeStats",
    "campaigns_csv_chunks",
    "ensure_messaging_schema",
    "events_csv_chunks",
    "merge_messaging",
    "redshift_merge_statements",
    "templates_csv_chunks",
    "validate_tenant_id",
]

SCHEMA: Final = "messaging"
MESSAGING_TABLES: Final = ("events", "campaigns", "templates")
# Columns of the curated CSV files, in file order. Files carry no tenant: the loader binds it, so a file can
# never put rows under another tenant.
EVENT_CSV_COLUMNS: Final = (
    "message_id",
    "event_type",
    "event_at",
    "campaign_id",
    "template_id",
    "channel",
    "error_code",
)
CAMPAIGN_CSV_COLUMNS: Final = ("campaign_id", "name", "updated_at")
TEMPLATE_CSV_COLUMNS: Final = ("template_id", "name", "category", "updated_at")
REDSHIFT_ETL_ROLE: Final = "ta_etl"

_S3_OBJECT = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9_./=-]+$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")
_EVENT_TYPES_SQL = ", ".join(f"'{kind}'" for kind in EVENT_TYPES)

_PG_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS messaging AUTHORIZATION {ETL_ROLE};
GRANT USAGE ON SCHEMA messaging TO {QUERY_ROLE};
SET LOCAL ROLE {ETL_ROLE};
CREATE TABLE IF NOT EXISTS messaging.events (
    tenant_id   text        NOT NULL,
    message_id  text        NOT NULL,
    event_type  text        NOT NULL CHECK (event_type IN ({_EVENT_TYPES_SQL})),
    event_at    timestamptz NOT NULL,
    campaign_id bigint,
    template_id bigint,
    channel     text,
    error_code  text,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id, event_type)
);
CREATE INDEX IF NOT EXISTS events_tenant_event_at ON messaging.events (tenant_id, event_at);
CREATE TABLE IF NOT EXISTS messaging.campaigns (
    tenant_id   text        NOT NULL,
    campaign_id bigint      NOT NULL,
    name        text,
    updated_at  timestamptz NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE TABLE IF NOT EXISTS messaging.templates (
    tenant_id   text        NOT NULL,
    template_id bigint      NOT NULL,
    name        text,
    category    text,
    updated_at  timestamptz NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_id)
);
"""

_STAGE_EVENTS = """
CREATE TEMP TABLE stage_events (
    message_id text, event_type text, event_at timestamptz, campaign_id bigint, template_id bigint, channel text,
    error_code text
) ON COMMIT DROP
"""
_STAGE_CAMPAIGNS = (
    "CREATE TEMP TABLE stage_campaigns (campaign_id bigint, name text, updated_at timestamptz) ON COMMIT DROP"
)
_STAGE_TEMPLATES = (
    "CREATE TEMP TABLE stage_templates (template_id bigint, name text, category text, updated_at timestamptz) "
    "ON COMMIT DROP"
)
_INSERT_EVENTS = """
INSERT INTO messaging.events
    (tenant_id, message_id, event_type, event_at, campaign_id, template_id, channel, error_code)
SELECT %s, message_id, event_type, event_at, campaign_id, template_id, channel, error_code FROM stage_events
ON CONFLICT (tenant_id, message_id, event_type) DO NOTHING
"""
# Strictly newer wins, so landing the same version again counts as no update.
_MERGE_CAMPAIGNS = """
INSERT INTO messaging.campaigns AS c (tenant_id, campaign_id, name, updated_at)
SELECT DISTINCT ON (campaign_id) %s, campaign_id, name, updated_at FROM stage_campaigns
ORDER BY campaign_id, updated_at DESC, name
ON CONFLICT (tenant_id, campaign_id) DO UPDATE
SET name = EXCLUDED.name, updated_at = EXCLUDED.updated_at, loaded_at = now()
WHERE c.updated_at < EXCLUDED.updated_at
RETURNING (xmax = 0)
"""
_MERGE_TEMPLATES = """
INSERT INTO messaging.templates AS t (tenant_id, template_id, name, category, updated_at)
SELECT DISTINCT ON (template_id) %s, template_id, name, category, updated_at FROM stage_templates
ORDER BY template_id, updated_at DESC, name, category
ON CONFLICT (tenant_id, template_id) DO UPDATE
SET name = EXCLUDED.name, category = EXCLUDED.category, updated_at = EXCLUDED.updated_at, loaded_at = now()
WHERE t.updated_at < EXCLUDED.updated_at
RETURNING (xmax = 0)
"""


@dataclass(frozen=True)
class MessagingMergeStats:
    """What one tenant's load did: rows staged, inserted, skipped as duplicates, and master data updated."""

    events_in: int
    events_inserted: int
    events_duplicate: int
    campaigns_in: int
    campaigns_inserted: int
    campaigns_updated: int
    templates_in: int
    templates_inserted: int
    templates_updated: int
    events_rows: int


def validate_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` if it is a tenant id (the only tenant values that may appear in a statement); raise
    :class:`InvalidInput` otherwise."""
    if not is_tenant_id(tenant_id):
        raise InvalidInput(f"tenant id {tenant_id!r} is not allowed: {TENANT_ID_RULE}", field="tenant_id")
    return tenant_id


def events_csv_chunks(events: Iterable[MessageEvent], *, rows_per_chunk: int = 10_000) -> Iterator[bytes]:
    """Return a generator of UTF-8 CSV chunks of :data:`EVENT_CSV_COLUMNS` (no header; NULL is an empty field)."""
    return _csv_chunks(
        (
            (
                e.message_id,
                e.event_type,
                format_event_time(e.event_ms),
                e.campaign_id,
                e.template_id,
                e.channel,
                e.error_code,
            )
            for e in events
        ),
        rows_per_chunk,
    )


def campaigns_csv_chunks(versions: Iterable[CampaignVersion], *, rows_per_chunk: int = 10_000) -> Iterator[bytes]:
    """Return a generator of UTF-8 CSV chunks of :data:`CAMPAIGN_CSV_COLUMNS` (no header)."""
    return _csv_chunks(((v.campaign_id, v.name, v.updated_at.isoformat()) for v in versions), rows_per_chunk)


def templates_csv_chunks(versions: Iterable[TemplateVersion], *, rows_per_chunk: int = 10_000) -> Iterator[bytes]:
    """Return a generator of UTF-8 CSV chunks of :data:`TEMPLATE_CSV_COLUMNS` (no header)."""
    return _csv_chunks(
        ((v.template_id, v.name, v.category, v.updated_at.isoformat()) for v in versions), rows_per_chunk
    )


def _csv_chunks(rows: Iterable[tuple[Any, ...]], rows_per_chunk: int) -> Iterator[bytes]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, rows_per_chunk)):
        buffer = io.StringIO()
        # Empty strings would read back as NULL; no column of these files holds one.
        csv.writer(buffer, lineterminator="\n").writerows(chunk)
        yield buffer.getvalue().encode()


def ensure_messaging_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the roles, the ``messaging`` schema, its tables, row-level security and grants if missing.

    Idempotent and safe from concurrent sessions: the DDL runs under the advisory lock every schema change of the
    platform takes. ``conn`` must be able to create roles and ``SET ROLE`` to the ETL role.
    """
    with conn.transaction():
        conn.execute(ROLES_SQL)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('tenant_analytics.schema'))")
        conn.execute(_PG_SCHEMA)
        for table in MESSAGING_TABLES:
            for statement in tenant_isolation(sql.Identifier("messaging", table)):
                conn.execute(statement)


def merge_messaging(
    conn: psycopg.Connection[Any],
    tenant_id: str,
    events_csv_chunks: Iterable[bytes],
    campaigns: Sequence[CampaignVersion],
    templates: Sequence[TemplateVersion],
) -> MessagingMergeStats:
    """Land one tenant's events (CSV chunks of :data:`EVENT_CSV_COLUMNS`) and master-data versions.

    One transaction as the ETL role with ``app.tenant_id`` set: an event whose key is already present (or repeated
    in the load) is skipped and counted as a duplicate; a campaign or template version replaces the stored one only
    when its ``updated_at`` is later. Returns the counts.
    """
    validate_tenant_id(tenant_id)
    foreign = {v.tenant_id for v in campaigns} | {v.tenant_id for v in templates}
    if foreign - {tenant_id}:
        raise InvalidInput(
            f"master data of tenant(s) {sorted(foreign - {tenant_id})} given for tenant '{tenant_id}'",
            field="tenant_id",
        )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
        cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        cur.execute(_STAGE_EVENTS)
        with cur.copy(f"COPY stage_events ({', '.join(EVENT_CSV_COLUMNS)}) FROM STDIN WITH (FORMAT csv)") as copy:
            for chunk in events_csv_chunks:
                copy.write(chunk)
        events_in = _count(cur, "SELECT count(*) FROM stage_events")
        cur.execute(_INSERT_EVENTS, (tenant_id,))
        events_inserted = cur.rowcount
        cur.execute(_STAGE_CAMPAIGNS)
        with cur.copy("COPY stage_campaigns (campaign_id, name, updated_at) FROM STDIN") as copy:
            for campaign in campaigns:
                copy.write_row((campaign.campaign_id, campaign.name, campaign.updated_at))
        cur.execute(_MERGE_CAMPAIGNS, (tenant_id,))
        campaign_flags = [bool(row[0]) for row in cur.fetchall()]
        cur.execute(_STAGE_TEMPLATES)
        with cur.copy("COPY stage_templates (template_id, name, category, updated_at) FROM STDIN") as copy:
            for template in templates:
                copy.write_row((template.template_id, template.name, template.category, template.updated_at))
        cur.execute(_MERGE_TEMPLATES, (tenant_id,))
        template_flags = [bool(row[0]) for row in cur.fetchall()]
        events_rows = _count(cur, "SELECT count(*) FROM messaging.events WHERE tenant_id = %s", (tenant_id,))
    return MessagingMergeStats(
        events_in=events_in,
        events_inserted=events_inserted,
        events_duplicate=events_in - events_inserted,
        campaigns_in=len(campaigns),
        campaigns_inserted=sum(campaign_flags),
        campaigns_updated=len(campaign_flags) - sum(campaign_flags),
        templates_in=len(templates),
        templates_inserted=sum(template_flags),
        templates_updated=len(template_flags) - sum(template_flags),
        events_rows=events_rows,
    )


def _count(cur: psycopg.Cursor[Any], statement: str, params: tuple[Any, ...] = ()) -> int:
    cur.execute(statement, params)
    row = cur.fetchone()
    return int(row[0]) if row is not None else 0


# Redshift ------------------------------------------------------------------------------------------------------

_RS_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS messaging.events (
    tenant_id   VARCHAR(63)  NOT NULL,
    message_id  VARCHAR(128) NOT NULL,
    event_type  VARCHAR(16)  NOT NULL,
    event_at    TIMESTAMPTZ  NOT NULL,
    campaign_id BIGINT,
    template_id BIGINT,
    channel     VARCHAR(16),
    error_code  VARCHAR(64),
    loaded_at   TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, message_id, event_type)
) DISTKEY (tenant_id) SORTKEY (tenant_id, event_at)""",
    """CREATE TABLE IF NOT EXISTS messaging.campaigns (
    tenant_id   VARCHAR(63)  NOT NULL,
    campaign_id BIGINT       NOT NULL,
    name        VARCHAR(1024),
    updated_at  TIMESTAMPTZ  NOT NULL,
    loaded_at   TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, campaign_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, campaign_id)""",
    """CREATE TABLE IF NOT EXISTS messaging.templates (
    tenant_id   VARCHAR(63)  NOT NULL,
    template_id BIGINT       NOT NULL,
    name        VARCHAR(1024),
    category    VARCHAR(64),
    updated_at  TIMESTAMPTZ  NOT NULL,
    loaded_at   TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, template_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, template_id)""",
)

# The ETL role is created when the workgroup is provisioned (Redshift has no CREATE ROLE IF NOT EXISTS).
REDSHIFT_SCHEMA_SQL: Final[tuple[str, ...]] = (
    "CREATE SCHEMA IF NOT EXISTS messaging",
    *_RS_TABLES,
    f"GRANT USAGE ON SCHEMA messaging TO ROLE {REDSHIFT_ETL_ROLE}",
    *(f"REVOKE ALL ON messaging.{table} FROM PUBLIC" for table in MESSAGING_TABLES),
    *(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON messaging.{table} TO ROLE {REDSHIFT_ETL_ROLE}"
        for table in MESSAGING_TABLES
    ),
)

_RS_STAGE_TYPES: Final = {
    "message_id": "VARCHAR(128)",
    "event_type": "VARCHAR(16)",
    "event_at": "TIMESTAMPTZ",
    "campaign_id": "BIGINT",
    "template_id": "BIGINT",
    "channel": "VARCHAR(16)",
    "error_code": "VARCHAR(64)",
    "name": "VARCHAR(1024)",
    "category": "VARCHAR(64)",
    "updated_at": "TIMESTAMPTZ",
}


class MessagingManifests(BaseModel):
    """S3 URIs of the COPY manifests listing one tenant's curated CSV files, one manifest per table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    events: str
    campaigns: str
    templates: str

    @field_validator("events", "campaigns", "templates")
    @classmethod
    def _s3_object(cls, value: str) -> str:
        if not _S3_OBJECT.match(value):
            raise ValueError(f"'{value}' is not an s3://bucket/key of a manifest")
        return value


def redshift_merge_statements(tenant_id: str, manifests: MessagingManifests, iam_role_arn: str) -> list[str]:
    """Return the Data API batch (one transaction) landing one tenant's messaging files on Redshift.

    The last statement returns the counts of :class:`MessagingMergeStats`, in field order. A Data API batch takes
    no parameters, so the tenant id, manifests and role are validated against strict patterns and quoted by
    sqlglot; every identifier is a constant of this module. Redshift's MERGE cannot leave a matched row alone, so
    events, which must never change once landed, are appended with an anti-join instead.
    """
    validate_tenant_id(tenant_id)
    if not _IAM_ROLE.match(iam_role_arn):
        raise InvalidInput(f"'{iam_role_arn}' is not an IAM role ARN", field="copy_role_arn")
    tenant = _literal(tenant_id)
    role = _literal(iam_role_arn)

    def stage(table: str, columns: Sequence[str], manifest: str) -> list[str]:
        return [
            f"CREATE TEMP TABLE stage_{table} ({', '.join(f'{c} {_RS_STAGE_TYPES[c]}' for c in columns)})",
            f"COPY stage_{table} ({', '.join(columns)}) FROM {_literal(manifest)} IAM_ROLE {role} "
            "FORMAT AS CSV MANIFEST TIMEFORMAT 'auto' EMPTYASNULL",
        ]

    def newest(table: str, key: str, columns: Sequence[str], order: str) -> str:
        return (
            f"CREATE TEMP TABLE newest_{table} AS SELECT {', '.join('s.' + c for c in columns)} FROM ("  # noqa: S608 - validated, quoted
            f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order}) AS rn FROM stage_{table}) AS s "
            f"LEFT JOIN messaging.{table} AS t ON t.tenant_id = {tenant} AND t.{key} = s.{key} "
            f"WHERE s.rn = 1 AND (t.{key} IS NULL OR t.updated_at < s.updated_at)"
        )

    def merge(table: str, key: str, columns: Sequence[str]) -> str:
        updates = ", ".join(f"{c} = n.{c}" for c in columns[1:])
        return (
            f"MERGE INTO messaging.{table} USING newest_{table} AS n "  # noqa: S608 - validated, quoted
            f"ON messaging.{table}.tenant_id = {tenant} AND messaging.{table}.{key} = n.{key} "
            f"WHEN MATCHED THEN UPDATE SET {updates}, loaded_at = SYSDATE "
            f"WHEN NOT MATCHED THEN INSERT (tenant_id, {', '.join(columns)}, loaded_at) "
            f"VALUES ({tenant}, {', '.join('n.' + c for c in columns)}, SYSDATE)"
        )

    def inserted(table: str, key: str) -> str:
        return (
            f"(SELECT COUNT(*) FROM newest_{table} AS n WHERE NOT EXISTS (SELECT 1 FROM messaging.{table} AS t "  # noqa: S608 - validated, quoted
            f"WHERE t.tenant_id = {tenant} AND t.{key} = n.{key})) AS {table}_inserted"
        )

    events = ", ".join(EVENT_CSV_COLUMNS)
    return [
        *stage("events", EVENT_CSV_COLUMNS, manifests.events),
        *stage("campaigns", CAMPAIGN_CSV_COLUMNS, manifests.campaigns),
        *stage("templates", TEMPLATE_CSV_COLUMNS, manifests.templates),
        (
            f"CREATE TEMP TABLE new_events AS SELECT {', '.join('s.' + c for c in EVENT_CSV_COLUMNS)} FROM ("  # noqa: S608 - validated, quoted
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY message_id, event_type ORDER BY event_at) AS rn "
            "FROM stage_events) AS s WHERE s.rn = 1 AND NOT EXISTS (SELECT 1 FROM messaging.events AS e "
            f"WHERE e.tenant_id = {tenant} AND e.message_id = s.message_id AND e.event_type = s.event_type)"
        ),
        newest("campaigns", "campaign_id", CAMPAIGN_CSV_COLUMNS, "updated_at DESC, name"),
        newest("templates", "template_id", TEMPLATE_CSV_COLUMNS, "updated_at DESC, name, category"),
        (
            "CREATE TEMP TABLE merge_stats AS SELECT "  # noqa: S608 - validated, quoted
            "(SELECT COUNT(*) FROM stage_events) AS events_in, "
            "(SELECT COUNT(*) FROM new_events) AS events_inserted, "
            "(SELECT COUNT(*) FROM stage_campaigns) AS campaigns_in, "
            f"{inserted('campaigns', 'campaign_id')}, "
            "(SELECT COUNT(*) FROM newest_campaigns) AS campaigns_touched, "
            "(SELECT COUNT(*) FROM stage_templates) AS templates_in, "
            f"{inserted('templates', 'template_id')}, "
            "(SELECT COUNT(*) FROM newest_templates) AS templates_touched"
        ),
        (
            f"INSERT INTO messaging.events (tenant_id, {events}, loaded_at) "  # noqa: S608 - validated, quoted
            f"SELECT {tenant}, {events}, SYSDATE FROM new_events"
        ),
        merge("campaigns", "campaign_id", CAMPAIGN_CSV_COLUMNS),
        merge("templates", "template_id", TEMPLATE_CSV_COLUMNS),
        (
            "SELECT events_in, events_inserted, events_in - events_inserted AS events_duplicate, "  # noqa: S608 - validated, quoted
            "campaigns_in, campaigns_inserted, campaigns_touched - campaigns_inserted AS campaigns_updated, "
            "templates_in, templates_inserted, templates_touched - templates_inserted AS templates_updated, "
            f"(SELECT COUNT(*) FROM messaging.events WHERE tenant_id = {tenant}) AS events_rows FROM merge_stats"
        ),
    ]


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="redshift")

"""Operational export: a summary table's rows of Redshift-tier tenants, copied into Aurora for operational reporting.

The API serves every tenant's hot dashboards from Aurora, so the top-level metrics of tenants living on Redshift are
copied into a same-named table there. On AWS the rows travel through S3::

    Redshift:  UNLOAD ('SELECT <columns> FROM <table> WHERE tenant_id IN (...)') TO 's3://.../run=<id>/' ... MANIFEST
    Aurora:    create_export_staging(...)                       -- a session-temporary table like the target
               SELECT aws_s3.table_import_from_s3(...)           -- once per file the manifest lists
               replace_tenants_from_staging(...)                 -- one transaction per tenant

(:func:`unload_statement`, :func:`read_unload_manifest`, :func:`import_tenants`). Which reader moves one unloaded
file into the staging table is an :class:`S3FileImporter`: :class:`AwsS3ExtensionImport` runs
:func:`aurora_import_statement` (Aurora's ``aws_s3`` extension), :class:`S3CopyImport` fetches the object itself and
streams it through ``COPY ... FROM STDIN`` (a PostgreSQL without the extension, i.e. locally, against moto). Both
read what UNLOAD's ``FORMAT AS CSV`` writes: no header, comma-separated, fields quoted only when they need it, NULL
as an empty unquoted field (so an empty string unloads as NULL).

Locally, when both stores are PostgreSQL, :func:`export_tenants` copies directly from the source connection into the
same staging table, then replaces tenant by tenant the same way. The target table is created when missing with the
source's column types, the key columns as primary key, owned by the ETL role and with row-level security FORCEd like
every tenant table. Identifiers are validated and composed with ``psycopg.sql.Identifier`` (or quoted by sqlglot for
Redshift); values are bound parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from sqlglot import exp

from tenant_analytics.errors import InvalidInput, StoreUnavailable
from tenant_analytics.models.capture import table_columns
from tenant_analytics.stores.messaging import validate_tenant_id
from tenant_analytics.stores.roles import ETL_ROLE, QUERY_ROLE, ROLES_SQL, tenant_isolation

__all__ = [
    "MANIFEST_NAME",
    "STAGING_TABLE",
    "AwsS3ExtensionImport",
    "ExportTable",
    "S3CopyImport",
    "S3FileImporter",
    "TenantExport",
    "UnloadedFiles",
    "aurora_import_statement",
    "create_export_staging",
    "ensure_export_table",
    "export_tenants",
    "import_tenants",
    "parse_unload_manifest",
    "read_unload_manifest",
    "replace_tenants_from_staging",
    "source_column_types",
    "split_s3_url",
    "stage_files",
    "unload_statement",
]

STAGING_TABLE: Final = "operational_export_stage"
MANIFEST_NAME: Final = "manifest"  # UNLOAD ... MANIFEST writes <prefix>manifest next to the data files
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# What format_type() returns for the column types a summary table holds; anything else is refused.
_COLUMN_TYPE = re.compile(r"^[a-z][a-z0-9 _]*(\(\d+(,\d+)?\))?( with(out)? time zone)?(\[\])?$")
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9_./=-]+/$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_KEY = re.compile(r"^[A-Za-z0-9_./=-]{1,1024}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")
_IMPORT_SQL: Final = "SELECT aws_s3.table_import_from_s3(%s, %s, %s, aws_commons.create_s3_uri(%s, %s, %s))"


class ExportTable(BaseModel):
    """A summary table to export: schema-qualified name, its columns and its key (which includes ``tenant_id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 2 or not all(_IDENTIFIER.match(part) for part in parts):
            raise ValueError(f"'{value}' is not a lower-case schema.table name")
        return value

    @field_validator("columns", "key_columns")
    @classmethod
    def _identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [column for column in value if not _IDENTIFIER.match(column)]
        if bad:
            raise ValueError(f"column names {bad} are not lower-case identifiers")
        if len(set(value)) != len(value):
            raise ValueError("column names must be unique")
        return value

    @model_validator(mode="after")
    def _keys_are_columns(self) -> ExportTable:
        if "tenant_id" not in self.key_columns:
            raise ValueError("key_columns must include tenant_id")
        missing = [column for column in self.key_columns if column not in self.columns]
        if missing:
            raise ValueError(f"key columns {missing} are not among the columns")
        return self

    @property
    def schema_name(self) -> str:
        """Return the schema part of :attr:`table`."""
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        """Return the table part of :attr:`table`."""
        return self.table.split(".")[1]

    def identifier(self) -> sql.Identifier:
        """Return :attr:`table` as a schema-qualified psycopg identifier."""
        return sql.Identifier(self.schema_name, self.table_name)

    def column_list(self) -> sql.Composed:
        """Return the columns as a comma-separated list of psycopg identifiers."""
        return sql.SQL(", ").join(sql.Identifier(column) for column in self.columns)


@dataclass(frozen=True)
class TenantExport:
    """What one tenant's replacement did on the target: rows removed, rows written."""

    tenant_id: str
    rows_deleted: int
    rows_copied: int


def export_tenants(
    table: ExportTable,
    tenant_ids: Sequence[str],
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    *,
    target_table: str | None = None,
) -> list[TenantExport]:
    """Copy the given tenants' rows of ``table`` from ``source`` into ``target_table`` (default: the same name)
    on ``target``.

    Creates the target table when missing. Each tenant's rows on the target are replaced in one transaction of
    its own, so a second run replaces rather than duplicates and a tenant with no source rows ends with none.
    Tenants already replaced stay replaced if a later one fails; running again is safe. Returns one
    :class:`TenantExport` per tenant, in the order given.
    """
    tenants = _checked_tenants(tenant_ids)
    destination = table if target_table is None else table.model_copy(update={"table": target_table})
    ExportTable.model_validate(destination.model_dump())  # the target name passes the same identifier checks
    ensure_export_table(target, destination, source_column_types(source, table))
    with _staging(target, destination) as staging:
        with target.transaction(), target.cursor() as out, source.transaction(), source.cursor() as cur:
            out.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
            copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, table.column_list())
            copy_out = sql.SQL("COPY (SELECT {} FROM {} WHERE tenant_id = %s) TO STDOUT").format(
                table.column_list(), table.identifier()
            )
            for tenant_id in tenants:
                # The source may be protected by row-level security too: read each tenant as that tenant.
                cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
                with cur.copy(copy_out, (tenant_id,)) as reader, out.copy(copy_in) as writer:
                    for data in reader:
                        writer.write(data)
        return replace_tenants_from_staging(target, destination, tenants, staging)


def source_column_types(source: psycopg.Connection[Any], table: ExportTable) -> dict[str, str]:
    """Return column -> SQL type (as ``format_type`` spells it) of the export's columns on the source table.

    Raises :class:`InvalidInput` when the table or one of the columns is missing there.
    """
    with source.transaction(), source.cursor() as cur:
        found = table_columns(cur, table.schema_name, table.table_name) or {}
    if not found:
        raise InvalidInput(f"source table '{table.table}' does not exist", field="table")
    missing = [column for column in table.columns if column not in found]
    if missing:
        raise InvalidInput(f"source table '{table.table}' has no column(s) {missing}", field="columns")
    return {column: found[column] for column in table.columns}


def ensure_export_table(target: psycopg.Connection[Any], table: ExportTable, column_types: dict[str, str]) -> None:
    """Create ``table`` on ``target`` if missing: the given column types, primary key = the key columns, owned by
    the ETL role, row-level security FORCEd with the tenant policy, SELECT for the query role.

    An existing table must have the export's columns and forced row-level security; otherwise
    :class:`StoreUnavailable` is raised rather than copying tenants' rows into an unprotected table.
    """
    for column in table.columns:
        if not _COLUMN_TYPE.match(column_types.get(column, "")):
            raise InvalidInput(f"column '{column}' has unsupported type {column_types.get(column)!r}", field="columns")
    name = table.identifier()
    with target.transaction():
        target.execute(ROLES_SQL)
    with target.transaction(), target.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('tenant_analytics.schema'))")
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table.table,))
        exists = bool(_first(cur.fetchone()))
        if exists:
            _check_existing(cur, table)
            return
        cur.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(table.schema_name), sql.Identifier(ETL_ROLE)
            )
        )
        cur.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(table.schema_name), sql.Identifier(QUERY_ROLE)
            )
        )
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
        columns = sql.SQL(", ").join(
            # the type text comes from the source's catalog and matched a strict pattern above
            sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(column_types[column]))
            for column in table.columns
        )
        keys = sql.SQL(", ").join(sql.Identifier(column) for column in table.key_columns)
        cur.execute(sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(name, columns, keys))
        for statement in tenant_isolation(name):
            cur.execute(statement)


def create_export_staging(target: psycopg.Connection[Any], table: ExportTable) -> sql.Identifier:
    """Create (or empty) the session-temporary staging table shaped like ``table``, owned by the ETL role.

    Returns its identifier. It lives until the session ends or it is dropped; files imported into it (the aws_s3
    import on AWS) are then applied by :func:`replace_tenants_from_staging`.
    """
    staging = sql.Identifier(STAGING_TABLE)
    with target.transaction(), target.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(staging))
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} LIMIT 0").format(
                staging, table.column_list(), table.identifier()
            )
        )
    return staging


def replace_tenants_from_staging(
    target: psycopg.Connection[Any], table: ExportTable, tenant_ids: Sequence[str], staging: sql.Identifier
) -> list[TenantExport]:
    """Replace each tenant's rows of ``table`` by its rows in ``staging``, one transaction per tenant, as the ETL
    role with ``app.tenant_id`` set (the table's policy rejects any row of another tenant). Returns the counts."""
    results: list[TenantExport] = []
    columns = table.column_list()
    for tenant_id in _checked_tenants(tenant_ids):
        with target.transaction(), target.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            cur.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(table.identifier()), (tenant_id,))
            deleted = cur.rowcount
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE tenant_id = %s").format(
                    table.identifier(), columns, columns, staging
                ),
                (tenant_id,),
            )
            results.append(TenantExport(tenant_id=tenant_id, rows_deleted=deleted, rows_copied=cur.rowcount))
    return results


def unload_statement(table: ExportTable, tenant_ids: Sequence[str], s3_prefix: str, iam_role_arn: str) -> str:
    """Return the Redshift UNLOAD writing the tenants' rows of ``table`` as CSV files, with a manifest, under
    ``s3_prefix``.

    UNLOAD takes its query as a string literal and no parameters: tenant ids are validated against a strict pattern,
    the query is built by sqlglot and then quoted as a literal (quotes doubled).
    """
    tenants = _checked_tenants(tenant_ids)
    if not _S3_PREFIX.match(s3_prefix):
        raise InvalidInput(f"'{s3_prefix}' is not an s3://bucket/prefix/ to unload into", field="s3_prefix")
    if not _IAM_ROLE.match(iam_role_arn):
        raise InvalidInput(f"'{iam_role_arn}' is not an IAM role ARN", field="iam_role_arn")
    query = (
        exp.select(*(exp.column(column) for column in table.columns))
        .from_(exp.table_(table.table_name, db=table.schema_name))
        .where(exp.column("tenant_id").isin(*(exp.Literal.string(tenant) for tenant in tenants)))
        .sql(dialect="redshift")
    )
    if "\\" in query:  # cannot happen with validated names; a backslash would change how the literal reads
        raise InvalidInput("the unload query may not contain a backslash", field="table")
    return (
        f"UNLOAD ({exp.Literal.string(query).sql(dialect='postgres')}) "
        f"TO {exp.Literal.string(s3_prefix).sql(dialect='postgres')} "
        f"IAM_ROLE {exp.Literal.string(iam_role_arn).sql(dialect='postgres')} "
        # ENCRYPTED AUTO: files take the bucket's default KMS key (UNLOAD would use SSE-S3 without it)
        "FORMAT AS CSV MANIFEST ENCRYPTED AUTO ALLOWOVERWRITE PARALLEL OFF"
    )


def aurora_import_statement(
    staging_table: str, columns: Sequence[str], bucket: str, key: str, region: str
) -> tuple[str, tuple[str, ...]]:
    """Return the Aurora statement importing one unloaded CSV file into ``staging_table``, and its bound values.

    Run once per file listed in the UNLOAD manifest, in the session holding the staging table.
    """
    if not _IDENTIFIER.match(staging_table):
        raise InvalidInput(f"'{staging_table}' is not a lower-case table name", field="staging_table")
    bad = [column for column in columns if not _IDENTIFIER.match(column)]
    if bad or not columns:
        raise InvalidInput(f"column names {bad} are not lower-case identifiers", field="columns")
    if not _S3_BUCKET.match(bucket):
        raise InvalidInput(f"'{bucket}' is not an S3 bucket name", field="bucket")
    if not _S3_KEY.match(key):
        raise InvalidInput(f"'{key}' is not an S3 object key of an unloaded file", field="key")
    if not _REGION.match(region):
        raise InvalidInput(f"'{region}' is not an AWS region", field="region")
    return _IMPORT_SQL, (staging_table, ",".join(columns), "(FORMAT csv)", bucket, key, region)


@dataclass(frozen=True)
class UnloadedFiles:
    """What one UNLOAD of a model wrote: the model, the run's prefix and the data files its manifest lists."""

    model: str
    prefix: str
    urls: tuple[str, ...]


class _ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="allow")  # UNLOAD adds "meta" (content_length, record_count with VERBOSE)

    url: str


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")  # MANIFEST VERBOSE adds "schema", "meta" and "author"

    entries: list[_ManifestEntry]


def split_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key); raise :class:`InvalidInput` unless both are well-formed."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not _S3_BUCKET.match(bucket) or not _S3_KEY.match(key):
        raise InvalidInput(f"'{url}' is not an s3://bucket/key of an unloaded file", field="url")
    return bucket, key


def parse_unload_manifest(body: bytes, prefix: str) -> list[str]:
    """Return the data file URLs listed by the UNLOAD manifest ``body`` written under ``prefix``, in order.

    The manifest is ``{"entries": [{"url": "s3://bucket/key", ...}, ...]}``. Raises :class:`InvalidInput` naming
    the manifest when it is not that shape, or lists a file outside ``prefix`` (a run reads only its own files).
    """
    where = prefix + MANIFEST_NAME
    try:
        manifest = _Manifest.model_validate(json.loads(body))
    except ValueError as exc:  # JSON, UTF-8 and pydantic's ValidationError are all ValueErrors
        reason = "not a JSON document"
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            reason = f"{'.'.join(str(part) for part in first['loc']) or 'document'}: {first['msg']}"
        raise InvalidInput(f"UNLOAD manifest '{where}' is malformed: {reason}", field="manifest") from exc
    urls = [entry.url for entry in manifest.entries]
    for url in urls:
        if not url.startswith(prefix) or url == where:
            raise InvalidInput(f"UNLOAD manifest '{where}' lists '{url}', outside its run's prefix", field="manifest")
        if not _S3_KEY.match(url.removeprefix("s3://").partition("/")[2]):
            raise InvalidInput(f"UNLOAD manifest '{where}' lists '{url}', not an S3 object key", field="manifest")
    return urls


def read_unload_manifest(s3: Any, prefix: str, *, rows_unloaded: int | None) -> list[str]:
    """Read the manifest an UNLOAD wrote under ``prefix`` (an s3:// URL ending in '/') and return its file URLs.

    UNLOAD writes no files at all, not even a manifest, when its query returns no rows: a missing manifest is an
    empty export only when the statement reported ``rows_unloaded == 0``; otherwise :class:`StoreUnavailable`.
    """
    bucket, key = split_s3_url(prefix + MANIFEST_NAME)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey as exc:
        if rows_unloaded == 0:
            return []
        raise StoreUnavailable(
            f"UNLOAD wrote no manifest at '{prefix}{MANIFEST_NAME}' (rows unloaded: {rows_unloaded})"
        ) from exc
    except s3.exceptions.ClientError as exc:
        raise StoreUnavailable(f"cannot read UNLOAD manifest '{prefix}{MANIFEST_NAME}': {exc}") from exc
    return parse_unload_manifest(body, prefix)


class S3FileImporter(Protocol):
    """Moves one unloaded CSV file from S3 into the session's staging table."""

    def prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Set up what the importer needs in the database (run with the store's schema)."""

    def import_file(self, cur: psycopg.Cursor[Any], columns: Sequence[str], bucket: str, key: str) -> None:
        """Append the rows of ``s3://bucket/key`` to :data:`STAGING_TABLE` (``columns`` in file order)."""


class AwsS3ExtensionImport:
    """Aurora PostgreSQL: the cluster itself reads the file (``aws_s3.table_import_from_s3``, its S3 import role)."""

    def __init__(self, region: str) -> None:
        self.region = region

    def prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create the ``aws_s3`` extension if missing and let the ETL role, which runs the imports, call it."""
        etl = sql.Identifier(ETL_ROLE)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('tenant_analytics.schema'))")
            cur.execute("CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE")
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA aws_s3, aws_commons TO {}").format(etl))
            cur.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_s3, aws_commons TO {}").format(etl))

    def import_file(self, cur: psycopg.Cursor[Any], columns: Sequence[str], bucket: str, key: str) -> None:
        """Run :func:`aurora_import_statement` for the file."""
        statement, params = aurora_import_statement(STAGING_TABLE, columns, bucket, key, self.region)
        cur.execute(statement, params)


class S3CopyImport:
    """Any PostgreSQL: fetch the object with an S3 client and stream it through ``COPY ... FROM STDIN``."""

    def __init__(self, s3: Callable[[], Any]) -> None:
        self._s3 = s3  # called on first use: a store that never imports creates no client

    def prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Nothing to set up."""

    def import_file(self, cur: psycopg.Cursor[Any], columns: Sequence[str], bucket: str, key: str) -> None:
        """COPY the object's CSV (as UNLOAD writes it) into the staging table."""
        s3 = self._s3()
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        except s3.exceptions.ClientError as exc:
            raise StoreUnavailable(f"cannot read unloaded file 's3://{bucket}/{key}': {exc}") from exc
        column_list = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
        staging = sql.Identifier(STAGING_TABLE)
        copy_in = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(staging, column_list)
        with cur.copy(copy_in) as writer:
            for chunk in body.iter_chunks(chunk_size=1 << 20):
                writer.write(chunk)


def stage_files(
    target: psycopg.Connection[Any], columns: Sequence[str], urls: Sequence[str], importer: S3FileImporter
) -> None:
    """Import every file of ``urls`` into the staging table with ``importer``, in one transaction as the ETL role
    with the session's time zone UTC."""
    located = [split_s3_url(url) for url in urls]
    with target.transaction(), target.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
        cur.execute("SET LOCAL TimeZone = 'UTC'")  # Redshift unloads TIMESTAMP without a zone; its days are UTC days
        for bucket, key in located:
            importer.import_file(cur, columns, bucket, key)


def import_tenants(
    table: ExportTable,
    tenant_ids: Sequence[str],
    urls: Sequence[str],
    target: psycopg.Connection[Any],
    importer: S3FileImporter,
    column_types: dict[str, str],
) -> list[TenantExport]:
    """Replace the tenants' rows of ``table`` on ``target`` by the rows of the unloaded files ``urls``.

    Creates the table when missing (``column_types``: column -> SQL type), imports every file into the staging
    table, then replaces each tenant's rows in a transaction of its own (a tenant with no rows in the files ends
    with none). Returns one :class:`TenantExport` per tenant, in the order given.
    """
    tenants = _checked_tenants(tenant_ids)
    ensure_export_table(target, table, column_types)
    with _staging(target, table) as staging:
        stage_files(target, table.columns, urls, importer)
        return replace_tenants_from_staging(target, table, tenants, staging)


@contextmanager
def _staging(target: psycopg.Connection[Any], table: ExportTable) -> Iterator[sql.Identifier]:
    staging = create_export_staging(target, table)
    try:
        yield staging
    finally:
        with target.transaction():
            target.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(staging))


def _check_existing(cur: psycopg.Cursor[Any], table: ExportTable) -> None:
    cur.execute(
        "SELECT c.relrowsecurity AND c.relforcerowsecurity, "
        "array(SELECT a.attname::text FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0 "
        "AND NOT a.attisdropped) FROM pg_class AS c WHERE c.oid = to_regclass(%s)",
        (table.table,),
    )
    row = cur.fetchone()
    forced, present = (bool(row[0]), set(row[1])) if row else (False, set())
    if not forced:
        raise StoreUnavailable(f"target table '{table.table}' exists without forced row-level security")
    missing = [column for column in table.columns if column not in present]
    if missing:
        raise StoreUnavailable(f"target table '{table.table}' exists without column(s) {missing}")


def _checked_tenants(tenant_ids: Sequence[str]) -> list[str]:
    if isinstance(tenant_ids, str):
        raise InvalidInput("tenant_ids must be a list of tenant ids, not one string", field="tenant_ids")
    return list(dict.fromkeys(validate_tenant_id(tenant) for tenant in tenant_ids))


def _first(row: tuple[Any, ...] | None) -> Any:
    return row[0] if row is not None else None

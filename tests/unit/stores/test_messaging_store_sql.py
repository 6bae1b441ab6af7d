"""Messaging landing and operational export SQL without a database: golden files, the Redshift grammar, CSV
serialisation and the validation that keeps caller values out of statements."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlglot
from pydantic import ValidationError
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.messaging import CampaignVersion, MessageEvent, TemplateVersion
from tenant_analytics.stores.messaging import (
    EVENT_CSV_COLUMNS,
    REDSHIFT_SCHEMA_SQL,
    MessagingManifests,
    campaigns_csv_chunks,
    events_csv_chunks,
    redshift_merge_statements,
    templates_csv_chunks,
)
from tenant_analytics.stores.operational_export import (
    STAGING_TABLE,
    ExportTable,
    aurora_import_statement,
    unload_statement,
)

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
ROLE = "arn:aws:iam::111111111111:role/redshift-copy"
UNLOAD_ROLE = "arn:aws:iam::111111111111:role/redshift-unload"
PREFIX = "s3://tenant-analytics-curated/curated/messaging/run=r1/batch=b0000/tenant_id=acme/"
MANIFESTS = MessagingManifests(
    events=PREFIX + "events.manifest", campaigns=PREFIX + "campaigns.manifest", templates=PREFIX + "templates.manifest"
)
EXPORT = ExportTable(
    table="models.tenant_daily_messaging",
    columns=("tenant_id", "day", "sent", "delivered", "failed"),
    key_columns=("tenant_id", "day"),
)
UNLOAD_PREFIX = "s3://tenant-analytics-curated/operational-export/run=r1/"


def _statements(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().split(";\n") if s.strip()]


def test_redshift_load_matches_the_golden_file_and_parses_as_redshift() -> None:
    # Given the schema and the load batch of one tenant
    statements = list(REDSHIFT_SCHEMA_SQL) + redshift_merge_statements("acme", MANIFESTS, ROLE)

    # Then it is the reviewed SQL, and the Redshift grammar understands every statement
    assert ";\n\n".join(statements) + ";\n" == (GOLDEN / "messaging_redshift_load.sql").read_text()
    for statement in statements:
        parsed = sqlglot.parse_one(statement, read="redshift")
        assert not isinstance(parsed, exp.Command), statement


def test_redshift_tables_are_distributed_by_tenant_and_granted_to_the_etl_role_only() -> None:
    creates = [sqlglot.parse_one(s, read="redshift") for s in REDSHIFT_SCHEMA_SQL if s.startswith("CREATE TABLE")]
    assert [c.find(exp.Table).name for c in creates] == ["events", "campaigns", "templates"]  # type: ignore[union-attr]
    for create in creates:
        assert "DISTKEY(tenant_id)" in create.sql("redshift") and "SORTKEY(tenant_id, " in create.sql("redshift")
    grants = [s for s in REDSHIFT_SCHEMA_SQL if s.startswith("GRANT")]
    assert grants and all(s.endswith("TO ROLE ta_etl") for s in grants)
    assert sum(s.startswith("REVOKE ALL ON messaging.") for s in REDSHIFT_SCHEMA_SQL) == 3
    assert not any("ta_query" in s for s in REDSHIFT_SCHEMA_SQL)  # the query role reads RLS-protected views only


@pytest.mark.parametrize(
    ("tenant", "role", "field"),
    [
        ("acme'; DROP TABLE messaging.events; --", ROLE, "tenant_id"),
        ("acme", "arn:aws:iam::1:role/x' --", "copy_role_arn"),
    ],
)
def test_redshift_load_values_are_validated(tenant: str, role: str, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        redshift_merge_statements(tenant, MANIFESTS, role)
    assert err.value.field == field


def test_a_manifest_uri_with_a_quote_is_refused() -> None:
    with pytest.raises(ValidationError, match="manifest"):
        MessagingManifests(events="s3://bucket/x' IAM_ROLE 'other", campaigns=PREFIX + "c", templates=PREFIX + "t")


def test_csv_serialisation_round_trips_nulls_quotes_and_commas() -> None:
    # Given events with and without sent-only fields, and master data with quotes and commas in names
    at = datetime(2026, 1, 5, 9, 0, 1, 250_000, tzinfo=UTC)
    ms = int(at.timestamp() * 1000)
    events = [
        MessageEvent("acme", "m1", "sent", ms, ms, 3, 4, "sms", None),
        MessageEvent("acme", "m1", "failed", ms, ms, None, None, None, "blocked"),
    ]
    campaign = CampaignVersion("acme", 3, 'Spring sale, "VIP" & Mother\'s Day', at)
    template = TemplateVersion("acme", 4, "promo,1", "marketing", at)

    # When they are serialised in chunks of one row
    event_chunks = list(events_csv_chunks(events, rows_per_chunk=1))
    rows = list(csv.reader(io.StringIO(b"".join(event_chunks).decode())))

    # Then each chunk is whole rows, NULL is an empty field and values read back unchanged
    assert len(event_chunks) == 2
    assert rows == [
        ["m1", "sent", "2026-01-05T09:00:01.250Z", "3", "4", "sms", ""],
        ["m1", "failed", "2026-01-05T09:00:01.250Z", "", "", "", "blocked"],
    ]
    assert len(rows[0]) == len(EVENT_CSV_COLUMNS)
    assert list(csv.reader(io.StringIO(b"".join(campaigns_csv_chunks([campaign])).decode()))) == [
        ["3", campaign.name, "2026-01-05T09:00:01.250000+00:00"]
    ]
    assert next(csv.reader(io.StringIO(b"".join(templates_csv_chunks([template])).decode())))[1:3] == [
        "promo,1",
        "marketing",
    ]


def _unloaded_query(statement: str) -> str:
    tokens = sqlglot.Tokenizer().tokenize(statement)
    assert tokens[0].text.upper() == "UNLOAD" and tokens[1].token_type == TokenType.L_PAREN
    assert tokens[2].token_type == TokenType.STRING and tokens[3].token_type == TokenType.R_PAREN
    return tokens[2].text


def test_unload_and_import_match_the_golden_file() -> None:
    # Given the export of three tenants
    unload = unload_statement(EXPORT, ["acme", "globex", "initech"], UNLOAD_PREFIX, UNLOAD_ROLE)
    statement, params = aurora_import_statement(
        STAGING_TABLE, EXPORT.columns, "tenant-analytics-curated", "operational-export/run=r1/0000_part_00", "eu-west-1"
    )

    # Then the statements are the reviewed ones and the import's values are all bound
    assert _statements(GOLDEN / "messaging_operational_export.sql") == [unload, statement]
    assert params == (
        "operational_export_stage",
        "tenant_id,day,sent,delivered,failed",
        "(FORMAT csv)",
        "tenant-analytics-curated",
        "operational-export/run=r1/0000_part_00",
        "eu-west-1",
    )
    assert statement.count("%s") == len(params)
    sqlglot.parse_one(statement, read="postgres")
    sqlglot.parse_one(unload, read="redshift")


def test_the_unloaded_query_selects_exactly_the_given_tenants() -> None:
    # When the UNLOAD's string literal is read back as SQL
    query = sqlglot.parse_one(_unloaded_query(unload_statement(EXPORT, ["acme", "b-2"], UNLOAD_PREFIX, UNLOAD_ROLE)))

    # Then it is a SELECT of the columns with a tenant IN list of exactly the tenants
    assert isinstance(query, exp.Select)
    assert [c.name for c in query.expressions] == list(EXPORT.columns)
    in_list = query.find(exp.In)
    assert in_list is not None and in_list.this.name == "tenant_id"
    assert [v.name for v in in_list.expressions] == ["acme", "b-2"]


@pytest.mark.parametrize(
    ("tenants", "prefix", "role", "field"),
    [
        (["acme", "x') TO 's3://evil/' --"], UNLOAD_PREFIX, UNLOAD_ROLE, "tenant_id"),
        (["Acme"], UNLOAD_PREFIX, UNLOAD_ROLE, "tenant_id"),
        ([""], UNLOAD_PREFIX, UNLOAD_ROLE, "tenant_id"),
        (["acme"], "s3://bucket/p' IAM_ROLE 'x/", UNLOAD_ROLE, "s3_prefix"),
        (["acme"], UNLOAD_PREFIX, "arn:aws:iam::1:role/x' --", "iam_role_arn"),
    ],
)
def test_unload_values_are_validated_before_any_sql(tenants: list[str], prefix: str, role: str, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        unload_statement(EXPORT, tenants, prefix, role)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("stage; drop", EXPORT.columns, "bucket-1", "k/0000_part_00", "eu-west-1"), "staging_table"),
        ((STAGING_TABLE, ("a", 'b"'), "bucket-1", "k/0000_part_00", "eu-west-1"), "columns"),
        ((STAGING_TABLE, EXPORT.columns, "Bucket_1", "k/0000_part_00", "eu-west-1"), "bucket"),
        ((STAGING_TABLE, EXPORT.columns, "bucket-1", "k/x'y", "eu-west-1"), "key"),
        ((STAGING_TABLE, EXPORT.columns, "bucket-1", "k/0000_part_00", "mars"), "region"),
    ],
)
def test_import_values_are_validated(args: tuple[str, tuple[str, ...], str, str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        aurora_import_statement(*args)
    assert err.value.field == field


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": "tenant_daily_messaging", "columns": ("tenant_id",), "key_columns": ("tenant_id",)},
        {"table": 'models."x"', "columns": ("tenant_id",), "key_columns": ("tenant_id",)},
        {"table": "models.x", "columns": ("tenant_id", "day"), "key_columns": ("day",)},
        {"table": "models.x", "columns": ("tenant_id",), "key_columns": ("tenant_id", "day")},
        {"table": "models.x", "columns": ("tenant_id", "Day"), "key_columns": ("tenant_id",)},
        {"table": "models.x", "columns": ("tenant_id", "tenant_id"), "key_columns": ("tenant_id",)},
    ],
)
def test_export_tables_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ExportTable.model_validate(kwargs)

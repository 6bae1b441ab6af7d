"""The AWS path of the operational export: a Redshift Data API store UNLOADs to S3 (moto), Aurora (the embedded
PostgreSQL) imports what the manifest lists. The Data API runs no SQL in moto, so its calls are checked against
the recorded contract (botocore's Stubber) and the files are put where, and as, Redshift's UNLOAD writes them."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from psycopg import sql

from tenant_analytics.constants import OPERATIONAL_EXPORT_PREFIX, OPERATIONAL_STORE_ID, REDSHIFT_STORE_ID
from tenant_analytics.local.postgres import ensure_database
from tenant_analytics.pipeline.models import RefreshResult
from tenant_analytics.pipeline.refresh import export_operational
from tenant_analytics.settings import StoreConfig
from tenant_analytics.stores.models import packaged_models
from tenant_analytics.stores.operational_export import ExportTable, S3CopyImport, unload_statement
from tenant_analytics.stores.postgres import PostgresStore
from tenant_analytics.stores.redshift import RedshiftDataStore

pytestmark = [pytest.mark.xdist_group("models")]

BUCKET = "tenant-analytics-curated"
EXPORT_URI = f"s3://{BUCKET}/{OPERATIONAL_EXPORT_PREFIX}"
ROLE = "arn:aws:iam::111111111111:role/redshift-copy"
CFG = StoreConfig(
    engine="redshift",
    tier="redshift",
    workgroup_name="tenant-analytics-prod",
    secret_arn="arn:aws:secretsmanager:us-east-1:111111111111:secret:rs",
    copy_role_arn=ROLE,
)
TARGET = {"WorkgroupName": "tenant-analytics-prod", "Database": "analytics", "SecretArn": CFG.secret_arn}
MODEL = packaged_models().get("tenant_daily")
COLUMNS = MODEL.columns
SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM operational.tenant_daily ORDER BY tenant_id, day"
DAY = datetime(2026, 6, 1, tzinfo=UTC)
LATENCY = ("latency_le_1s", "latency_le_5s", "latency_le_30s", "latency_le_60s", "latency_le_300s", "latency_le_3600s")


@dataclass(frozen=True)
class CampaignDay:
    """One row of campaign_daily, the input tenant_daily aggregates."""

    tenant_id: str
    campaign_id: int
    day: datetime
    sent: int
    delivered: int
    opened: int
    failed: int

    @property
    def latency(self) -> tuple[int, ...]:
        """Cumulative delivery-latency histogram: all delivered within 3600 s, a growing share faster."""
        return tuple(self.delivered * share // len(LATENCY) for share in range(1, len(LATENCY) + 1))


def tenant_daily(rows: list[CampaignDay]) -> list[tuple[Any, ...]]:
    """tenant_daily computed here, from its definition: per tenant and day, campaigns and sums and rates."""
    groups: dict[tuple[str, datetime], list[CampaignDay]] = defaultdict(list)
    for row in rows:
        groups[(row.tenant_id, row.day)].append(row)
    out: list[tuple[Any, ...]] = []
    for (tenant, day), group in sorted(groups.items()):
        sent, delivered = sum(r.sent for r in group), sum(r.delivered for r in group)
        opened, failed = sum(r.opened for r in group), sum(r.failed for r in group)
        latency = [sum(r.latency[bucket] for r in group) for bucket in range(len(LATENCY))]
        out.append(
            (
                tenant,
                day,
                len(group),
                sent,
                delivered,
                opened,
                failed,
                delivered / sent if sent else None,
                opened / delivered if delivered else None,
                *latency,
            )
        )
    return out


def redshift_csv(rows: list[tuple[Any, ...]]) -> bytes:
    """Rows as UNLOAD ... FORMAT AS CSV writes them: no header, NULL as an empty field, quotes only when needed,
    TIMESTAMP without a zone."""

    def field(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        text = repr(value) if isinstance(value, float) else str(value)
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text

    return "".join(",".join(field(v) for v in row) + "\n" for row in rows).encode()


def put_unload(s3: Any, run: str, files: list[list[tuple[Any, ...]]]) -> None:
    """Write what UNLOAD ... MANIFEST PARALLEL OFF writes under the run's prefix: 000, 001, ..., then manifest."""
    prefix = f"{OPERATIONAL_EXPORT_PREFIX}tenant_daily/run={run}/"
    entries = []
    for number, rows in enumerate(files):
        body = redshift_csv(rows)
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{number:03d}", Body=body)
        entries.append({"url": f"s3://{BUCKET}/{prefix}{number:03d}", "meta": {"content_length": len(body)}})
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}manifest", Body=json.dumps({"entries": entries}).encode())


def expect_unload(stub: Stubber, run: str, tenants: list[str], rows: int) -> None:
    """The Data API calls of one UNLOAD: exactly the reviewed statement for the run's prefix, then its status."""
    table = ExportTable(table="models.tenant_daily", columns=COLUMNS, key_columns=MODEL.grain)
    statement = unload_statement(table, tenants, f"{EXPORT_URI}tenant_daily/run={run}/", ROLE)
    stub.add_response("execute_statement", {"Id": f"u-{run}"}, {"Sql": statement, **TARGET})
    stub.add_response("describe_statement", {"Id": f"u-{run}", "Status": "SUBMITTED"}, {"Id": f"u-{run}"})
    stub.add_response(
        "describe_statement", {"Id": f"u-{run}", "Status": "FINISHED", "ResultRows": rows}, {"Id": f"u-{run}"}
    )


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def aurora_dsn(pg_admin: str, db_prefix: str) -> str:
    """A fresh database standing in for Aurora, whose default time zone is not UTC (the import must not shift
    Redshift's zone-less timestamps)."""
    name = f"{db_prefix}_aurora_1"
    dsn = ensure_database(pg_admin, name)
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} SET TimeZone = 'America/New_York'").format(sql.Identifier(name)))
    return dsn


@pytest.fixture
def aurora(aurora_dsn: str, s3: Any) -> Iterator[PostgresStore]:
    """The operational store, importing unloaded files by COPY of objects read from moto."""
    store = PostgresStore(OPERATIONAL_STORE_ID, aurora_dsn, s3_import=S3CopyImport(lambda: s3))
    store.ensure_schema()
    yield store
    store.close()


def test_a_redshift_export_lands_in_auroras_operational_schema_and_a_rerun_replaces_it(
    s3: Any, aurora: PostgresStore, aurora_dsn: str
) -> None:
    # Given a Redshift store whose export runs are named r1, r2 and whose Data API calls follow the contract
    data_api = boto3.client("redshift-data", region_name="us-east-1")
    runs = iter(["r1", "r2"])
    redshift = RedshiftDataStore(
        REDSHIFT_STORE_ID, CFG, data_api, s3=s3, sleep=lambda _: None, run_id=lambda: next(runs)
    )
    stores = {REDSHIFT_STORE_ID: redshift, OPERATIONAL_STORE_ID: aurora}
    # and campaign days of three tenants, one day with nothing sent (rates are NULL)
    campaigns = [
        CampaignDay("acme", 1, DAY, 100, 90, 40, 10),
        CampaignDay("acme", 2, DAY, 50, 45, 5, 5),
        CampaignDay("acme", 1, DAY + timedelta(days=1), 0, 0, 0, 0),
        CampaignDay("acme", 1, DAY + timedelta(days=2), 7, 3, 1, 4),
        CampaignDay("globex", 9, DAY, 1000, 999, 500, 1),
        CampaignDay("globex", 9, DAY + timedelta(days=1), 30, 20, 20, 10),
    ]
    first = tenant_daily(campaigns)
    acme, globex = [r for r in first if r[0] == "acme"], [r for r in first if r[0] == "globex"]
    # and what UNLOAD wrote for acme and globex: two files, then the manifest
    put_unload(s3, "r1", [acme[:2], acme[2:] + globex])

    # When the export of acme and globex runs
    with Stubber(data_api) as stub:
        expect_unload(stub, "r1", ["acme", "globex"], rows=len(first))
        result = export_operational(REDSHIFT_STORE_ID, ["acme", "globex"], stores.__getitem__, export_uri=EXPORT_URI)
        stub.assert_no_pending_responses()

    # Then the UNLOAD sent was the reviewed statement, and Aurora holds exactly the computed rows
    assert result == RefreshResult()
    with psycopg.connect(aurora_dsn, autocommit=True) as conn:
        assert conn.execute(SELECT_ALL).fetchall() == first
        assert len(first) == 5

    # When acme's metrics change (a day gone, a day changed) and only acme is exported again
    second = tenant_daily(
        [
            CampaignDay("acme", 1, DAY, 120, 100, 50, 20),
            CampaignDay("acme", 3, DAY + timedelta(days=3), 10, 10, 10, 0),
        ]
    )
    put_unload(s3, "r2", [second])
    with Stubber(data_api) as stub:
        expect_unload(stub, "r2", ["acme"], rows=len(second))
        result = export_operational(REDSHIFT_STORE_ID, ["acme"], stores.__getitem__, export_uri=EXPORT_URI)
        stub.assert_no_pending_responses()

    # Then acme's rows are replaced, not added to, and globex's are untouched
    assert result == RefreshResult()
    with psycopg.connect(aurora_dsn, autocommit=True) as conn:
        assert conn.execute(SELECT_ALL).fetchall() == second + globex
        # and the table is still a tenant table: RLS forced, owned by the ETL role, the query role sees one tenant
        assert conn.execute(
            "SELECT pg_get_userbyid(relowner), relrowsecurity AND relforcerowsecurity FROM pg_class "
            "WHERE oid = 'operational.tenant_daily'::regclass"
        ).fetchone() == ("ta_etl", True)
        with conn.transaction():
            conn.execute("SET LOCAL ROLE ta_query")
            conn.execute("SELECT set_config('app.tenant_id', 'globex', true)")
            seen = conn.execute("SELECT DISTINCT tenant_id FROM operational.tenant_daily").fetchall()
        assert seen == [("globex",)]
        # and its columns have the types of Aurora's own tenant_daily
        types = conn.execute(
            "SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attname = ANY(%s)",
            ("operational.tenant_daily", list(COLUMNS)),
        ).fetchone()
        models_types = conn.execute(
            "SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attname = ANY(%s)",
            ("models.tenant_daily", list(COLUMNS)),
        ).fetchone()
        assert types == models_types and types is not None and "numeric" in types[0]


def test_a_failed_import_is_the_tenants_refresh_failure_and_changes_nothing(
    s3: Any, aurora: PostgresStore, aurora_dsn: str
) -> None:
    # Given an UNLOAD whose manifest lists a file that is not there (deleted before the import)
    data_api = boto3.client("redshift-data", region_name="us-east-1")
    redshift = RedshiftDataStore(REDSHIFT_STORE_ID, CFG, data_api, s3=s3, sleep=lambda _: None, run_id=lambda: "r9")
    put_unload(s3, "r9", [tenant_daily([CampaignDay("acme", 1, DAY, 1, 1, 1, 0)])])
    s3.delete_object(Bucket=BUCKET, Key=f"{OPERATIONAL_EXPORT_PREFIX}tenant_daily/run=r9/000")

    # When the export runs
    with Stubber(data_api) as stub:
        expect_unload(stub, "r9", ["acme"], rows=1)
        result = export_operational(
            REDSHIFT_STORE_ID,
            ["acme"],
            {REDSHIFT_STORE_ID: redshift, OPERATIONAL_STORE_ID: aurora}.__getitem__,
            export_uri=EXPORT_URI,
        )

    # Then acme fails at the refresh step naming the missing file, and no row was written
    assert [(f.tenant_id, f.step) for f in result.failures] == [("acme", "refresh")]
    assert result.failures[0].error.startswith("operational export: cannot read unloaded file 's3://")
    assert "run=r9/000" in result.failures[0].error
    with psycopg.connect(aurora_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM operational.tenant_daily").fetchone() == (0,)

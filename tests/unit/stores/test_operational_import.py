"""The AWS path of the operational export without a database: UNLOAD manifests, the Aurora import adapter's
statements (recorded on a stand-in connection), the Redshift store's UNLOAD through the Data API (botocore's
Stubber checks every parameter against the service model) and how a store's config picks its importer."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from pydantic import ValidationError

from tenant_analytics.errors import InvalidInput, StoreUnavailable
from tenant_analytics.settings import StoreConfig
from tenant_analytics.stores import factory
from tenant_analytics.stores.operational_export import (
    STAGING_TABLE,
    AwsS3ExtensionImport,
    ExportTable,
    S3CopyImport,
    UnloadedFiles,
    aurora_import_statement,
    parse_unload_manifest,
    read_unload_manifest,
    stage_files,
    unload_statement,
)
from tenant_analytics.stores.redshift import RedshiftDataStore

BUCKET = "tenant-analytics-curated"
PREFIX = f"s3://{BUCKET}/exports/operational/tenant_daily/run=r1/"
ROLE = "arn:aws:iam::111111111111:role/redshift-copy"
COLUMNS = ("tenant_id", "day", "sent")
CFG = StoreConfig(
    engine="redshift",
    tier="redshift",
    workgroup_name="tenant-analytics-prod",
    secret_arn="arn:aws:secretsmanager:eu-west-1:111111111111:secret:rs",
    copy_role_arn=ROLE,
)
TARGET = {"WorkgroupName": "tenant-analytics-prod", "Database": "analytics", "SecretArn": CFG.secret_arn}


def manifest(*names: str, prefix: str = PREFIX) -> bytes:
    """A manifest as UNLOAD ... MANIFEST writes it: one entry per file, with its size."""
    return json.dumps({"entries": [{"url": prefix + n, "meta": {"content_length": 10}} for n in names]}).encode()


class RecordingCursor:
    """Records what is executed on it; returns nothing."""

    def __init__(self) -> None:
        self.executed: list[tuple[Any, Any]] = []

    def __enter__(self) -> RecordingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, statement: Any, params: Any = None) -> None:
        self.executed.append((statement, params))


class RecordingConnection:
    """Stands in for a psycopg connection: transactions do nothing, every cursor records into one list."""

    def __init__(self) -> None:
        self.cursor_ = RecordingCursor()
        self.transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.transactions += 1
        yield

    def cursor(self) -> RecordingCursor:
        return self.cursor_


def test_the_aws_s3_importer_runs_the_import_statement_once_per_manifest_entry() -> None:
    # Given a manifest of three unloaded files
    urls = parse_unload_manifest(manifest("000", "001", "002"), PREFIX)
    conn = RecordingConnection()

    # When they are staged with the production importer
    stage_files(conn, COLUMNS, urls, AwsS3ExtensionImport("eu-west-1"))  # type: ignore[arg-type]

    # Then exactly the Aurora import statement runs, once per file in manifest order, every value bound,
    # in one transaction that runs as the ETL role with UTC as the session's time zone
    imports = [call for call in conn.cursor_.executed if isinstance(call[0], str) and "aws_s3" in call[0]]
    key = "exports/operational/tenant_daily/run=r1/"
    assert imports == [
        aurora_import_statement(STAGING_TABLE, COLUMNS, BUCKET, key + name, "eu-west-1")
        for name in ("000", "001", "002")
    ]
    assert imports[1][1] == (STAGING_TABLE, "tenant_id,day,sent", "(FORMAT csv)", BUCKET, key + "001", "eu-west-1")
    assert conn.transactions == 1
    assert len(conn.cursor_.executed) == 2 + 3
    assert "ta_etl" in repr(conn.cursor_.executed[0][0])
    assert conn.cursor_.executed[1] == ("SET LOCAL TimeZone = 'UTC'", None)


def test_only_the_aws_s3_importer_sets_up_the_extension() -> None:
    # Given a connection for each importer
    aws, local = RecordingConnection(), RecordingConnection()

    # When each prepares the store
    AwsS3ExtensionImport("eu-west-1").prepare(aws)  # type: ignore[arg-type]
    S3CopyImport(lambda: None).prepare(local)  # type: ignore[arg-type]

    # Then the extension is created (with aws_commons) and granted to the ETL role only on the aws_s3 path
    statements = [repr(statement) for statement, _ in aws.cursor_.executed]
    assert "CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE" in statements[1]
    assert all("ta_etl" in s and "aws_s3, aws_commons" in s for s in statements[2:])
    assert len(statements) == 4
    assert local.cursor_.executed == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not a JSON document"),
        (b"\xff\xfe", "not a JSON document"),
        (b"[]", "document: Input should be a valid dictionary"),
        (b'{"files": []}', "entries: Field required"),
        (b'{"entries": [{"size": 1}]}', "entries.0.url: Field required"),
        (manifest("000", prefix=f"s3://{BUCKET}/exports/operational/tenant_daily/run=r0/"), "outside its run's prefix"),
        (manifest("000", prefix="s3://other-bucket/exports/operational/tenant_daily/run=r1/"), "outside"),
        (manifest("manifest"), "outside its run's prefix"),
        (manifest("x'y"), "not an S3 object key"),
    ],
)
def test_a_malformed_manifest_is_rejected_naming_it(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_unload_manifest(body, PREFIX)
    assert str(err.value).startswith(f"UNLOAD manifest '{PREFIX}manifest' ")
    assert reason in str(err.value) and err.value.field == "manifest"


def test_a_verbose_manifest_and_an_empty_one_are_read() -> None:
    verbose = {
        "entries": [{"url": PREFIX + "000", "meta": {"content_length": 5, "record_count": 1}}],
        "schema": {"elements": [{"name": "tenant_id", "type": {"base": "character varying"}}]},
        "meta": {"content_length": 5, "record_count": 1},
        "author": {"name": "Amazon Redshift", "version": "1.0"},
    }
    assert parse_unload_manifest(json.dumps(verbose).encode(), PREFIX) == [PREFIX + "000"]
    assert parse_unload_manifest(b'{"entries": []}', PREFIX) == []


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3", region_name="eu-west-1")


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_a_missing_manifest_is_an_empty_export_only_when_no_row_was_unloaded(s3: Any) -> None:
    key = {"Bucket": BUCKET, "Key": "exports/operational/tenant_daily/run=r1/manifest"}
    with Stubber(s3) as stub:
        # UNLOAD of no rows writes no file at all
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404, expected_params=key)
        assert read_unload_manifest(s3, PREFIX, rows_unloaded=0) == []
        # rows unloaded (or an unknown count) and no manifest: something went wrong, nothing is replaced
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404, expected_params=key)
        with pytest.raises(StoreUnavailable, match=r"no manifest at .*run=r1/manifest' \(rows unloaded: 12\)"):
            read_unload_manifest(s3, PREFIX, rows_unloaded=12)
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403, expected_params=key)
        with pytest.raises(StoreUnavailable, match=r"cannot read UNLOAD manifest .*AccessDenied"):
            read_unload_manifest(s3, PREFIX, rows_unloaded=None)
        stub.assert_no_pending_responses()


def test_the_redshift_store_unloads_each_model_under_a_run_prefix_and_reads_its_manifest(s3: Any) -> None:
    # Given a Redshift store whose next export run is named r1
    client = boto3.client("redshift-data", region_name="eu-west-1")
    store = RedshiftDataStore("redshift-1", CFG, client, s3=s3, sleep=lambda _: None, run_id=lambda: "r1")
    from tenant_analytics.stores.models import packaged_models

    model = packaged_models().get("tenant_daily")
    table = ExportTable(table="models.tenant_daily", columns=model.columns, key_columns=model.grain)
    expected_sql = unload_statement(table, ["acme", "globex"], PREFIX, ROLE)

    with Stubber(client) as data_api, Stubber(s3) as objects:
        data_api.add_response("execute_statement", {"Id": "u1"}, {"Sql": expected_sql, **TARGET})
        data_api.add_response("describe_statement", {"Id": "u1", "Status": "STARTED"}, {"Id": "u1"})
        data_api.add_response("describe_statement", {"Id": "u1", "Status": "FINISHED", "ResultRows": 4}, {"Id": "u1"})
        objects.add_response(
            "get_object",
            {"Body": _body(manifest("000", "001"))},
            {"Bucket": BUCKET, "Key": "exports/operational/tenant_daily/run=r1/manifest"},
        )
        # When the operational model is unloaded for two tenants
        unloaded = store.unload_models(["tenant_daily"], ["acme", "globex"], f"s3://{BUCKET}/exports/operational/")
        data_api.assert_no_pending_responses()
        objects.assert_no_pending_responses()

    # Then the UNLOAD sent is the reviewed statement for that run's prefix, and the manifest's files come back
    assert unloaded == [UnloadedFiles("tenant_daily", PREFIX, (PREFIX + "000", PREFIX + "001"))]


def test_an_unload_needs_the_role_and_an_s3_client(s3: Any) -> None:
    client = boto3.client("redshift-data", region_name="eu-west-1")
    without_role = RedshiftDataStore("redshift-1", CFG.model_copy(update={"copy_role_arn": None}), client, s3=s3)
    with pytest.raises(InvalidInput, match="needs 'copy_role_arn' to UNLOAD"):
        without_role.unload_models(["tenant_daily"], ["acme"], f"s3://{BUCKET}/exports/operational/")
    with pytest.raises(InvalidInput, match="no S3 client"):
        RedshiftDataStore("redshift-1", CFG, client).unload_models(["tenant_daily"], ["acme"], "s3://b/p/")


def test_the_store_config_picks_the_importer_and_local_stores_copy() -> None:
    # Given a store config as the CDK writes it for Aurora, and one as a local store has it
    aurora = StoreConfig(engine="postgres", tier="aurora", s3_import="aws_s3", s3_import_region="eu-west-1")
    local = StoreConfig(engine="postgres", tier="aurora", dsn="postgresql://localhost/x")

    # Then Aurora imports with the extension, in the bucket's region, and the local store by COPY
    importer = factory.s3_importer(aurora)
    assert isinstance(importer, AwsS3ExtensionImport) and importer.region == "eu-west-1"
    assert local.s3_import == "copy" and isinstance(factory.s3_importer(local), S3CopyImport)
    # and the extension without a region is refused when the settings are read
    with pytest.raises(ValidationError, match="s3_import_region"):
        StoreConfig(engine="postgres", tier="aurora", s3_import="aws_s3")

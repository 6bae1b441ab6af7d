"""The local AWS layer: Lambda invokes reach the real handlers, Glue and EMR Serverless job runs run the real
script in local Spark, and state survives between sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tenant_analytics import constants as c
from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.settings import get_settings
from tenant_analytics.transforms.manifest import TransformManifest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

TICKET = {
    "id": 7,
    "created_at": "2026-02-01T10:00:00Z",
    "updated_at": "2026-02-01T11:00:00Z",
    "status": "open",
    "priority": "high",
    "via": {"channel": "web"},
    "requester_id": 1,
    "extra": {"ignored": True},
}


@pytest.fixture
def platform(tmp_path: Path, pg_admin: str, db_prefix: str) -> Iterator[LocalPlatform]:
    with local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as p:
        yield p


def landed_manifest() -> str:
    s = get_settings()
    s3 = boto3.client("s3")
    key = f"{c.RAW_SUPPORT_PREFIX}/tickets/tenant_id=acme/page-000000000001.jsonl"
    s3.put_object(Bucket=s.raw_bucket, Key=key, Body=(json.dumps(TICKET) + "\n").encode())
    manifest = TransformManifest(
        raw_root=f"s3://{s.raw_bucket}/{c.RAW_SUPPORT_PREFIX}/",
        hour="2026-02-01T11:00:00Z",
        batch_id="b1",
        tenants={"acme": {"tickets": [f"s3://{s.raw_bucket}/{key}"]}},
        history_root=f"s3://{s.curated_bucket}/{c.HISTORY_SUPPORT_PREFIX}/",
    )
    s3.put_object(Bucket=s.artifacts_bucket, Key="manifests/test.json", Body=manifest.to_json().encode())
    return f"s3://{s.artifacts_bucket}/manifests/test.json"


def curated_rows(prefix: str) -> list[str]:
    s3 = boto3.client("s3")
    bucket = get_settings().curated_bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return [
        line
        for k in keys
        if k.endswith(".csv")
        for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()
    ]


def test_glue_and_emr_job_runs_execute_the_script(platform: LocalPlatform) -> None:
    manifest = landed_manifest()
    out = f"s3://{get_settings().curated_bucket}/curated/test"
    # When the same job runs through Glue and through EMR Serverless
    glue = boto3.client("glue")
    run_id = glue.start_job_run(
        JobName=get_settings().transform_job_name, Arguments={"--manifest": manifest, "--output": out + "/glue/"}
    )["JobRunId"]
    emr = boto3.client("emr-serverless")
    app_id = emr.list_applications()["applications"][0]["id"]
    emr_run = emr.start_job_run(
        applicationId=app_id,
        executionRoleArn="arn:aws:iam::123456789012:role/local-role",
        jobDriver={
            "sparkSubmit": {
                "entryPoint": "s3://artifacts/glue-scripts/transform_support.py",
                "entryPointArguments": ["--manifest", manifest, "--output", out + "/emr/"],
            }
        },
    )
    # Then both succeed, write the same curated row and append the page to the tenant's history
    assert (
        glue.get_job_run(JobName=get_settings().transform_job_name, RunId=run_id)["JobRun"]["JobRunState"]
        == "SUCCEEDED"
    )
    assert emr.get_job_run(applicationId=app_id, jobRunId=emr_run["jobRunId"])["jobRun"]["state"] == "SUCCESS"
    expected = ["7,2026-02-01T10:00:00Z,2026-02-01T11:00:00Z,open,high,web,1,,,,,,,"]
    assert curated_rows("curated/test/glue/tickets/tenant_id=acme/") == expected
    assert curated_rows("curated/test/emr/tickets/tenant_id=acme/") == expected
    history = boto3.client("s3").list_objects_v2(
        Bucket=get_settings().curated_bucket, Prefix=f"{c.HISTORY_SUPPORT_PREFIX}/tickets/tenant_id=acme/batch=b1/"
    )
    assert [o["Key"] for o in history.get("Contents", []) if o["Key"].endswith(".parquet")]


def test_a_failing_job_run_reports_failed_with_the_reason(platform: LocalPlatform) -> None:
    glue = boto3.client("glue")
    name = get_settings().transform_job_name
    run_id = glue.start_job_run(
        JobName=name, Arguments={"--manifest": "s3://nowhere/missing.json", "--output": "s3://x/y/"}
    )["JobRunId"]
    run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    assert run["JobRunState"] == "FAILED"
    assert "NoSuchBucket" in run["ErrorMessage"] or "does not exist" in run["ErrorMessage"]


def test_lambda_invokes_run_the_handler_and_errors_are_function_errors(platform: LocalPlatform) -> None:
    lam = boto3.client("lambda")
    ok = lam.invoke(
        FunctionName=c.function_name("plan"),
        Payload=json.dumps({"input": {}, "execution_name": "x", "execution_start": "2026-02-01T11:30:00Z"}).encode(),
    )
    assert "FunctionError" not in ok and json.loads(ok["Payload"].read())["hour"] == "2026-02-01T10:00:00Z"
    bad = lam.invoke(FunctionName=c.function_name("plan"), Payload=b'{"input": {"bogus": 1}}')
    assert bad["FunctionError"] == "Unhandled"
    assert json.loads(bad["Payload"].read())["errorType"] == "ValidationError"


def test_state_is_kept_between_sessions(tmp_path: Path, pg_admin: str, db_prefix: str) -> None:
    home = tmp_path / "kept"
    with local_platform(home, pg_admin=pg_admin, db_prefix=db_prefix) as first:
        first.add_tenant("acme", "http://127.0.0.1:1/acme")
        boto3.client("s3").put_object(Bucket=get_settings().raw_bucket, Key="raw/x.txt", Body=b"kept")
    with local_platform(home, pg_admin=pg_admin, db_prefix=db_prefix) as second:
        assert [t.tenant_id for t in second.registry.list()] == ["acme"]
        body = boto3.client("s3").get_object(Bucket=get_settings().raw_bucket, Key="raw/x.txt")["Body"].read()
        assert body == b"kept"

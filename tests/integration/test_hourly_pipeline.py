"""The hourly state machine (the real ASL) under moto, with real handlers, local Spark and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from support_reference import Raw, expected_daily, expected_metrics

from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.sources.server import SourceServer
from tenant_analytics.sources.synthetic import (
    SupportDataset,
    TenantSpec,
    events_until,
    generate_dataset,
    generate_support_data,
    latest_organizations,
    latest_users,
    latest_versions,
    parse_timestamp,
)
from tenant_analytics.tenants.models import TenantStatus

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

START = datetime(2026, 9, 1, tzinfo=UTC)
MIDDLE = datetime(2026, 9, 15, tzinfo=UTC)
END = datetime(2026, 10, 1, tzinfo=UTC)
SPECS = [TenantSpec("alpha", 120), TenantSpec("beta", 45), TenantSpec("gamma", 8)]
DAILY = {
    "dataset": "tickets",
    "measures": ["tickets_created"],
    "time": {"dimension": "created_at", "granularity": "day"},
}


@pytest.fixture
def dataset() -> dict:
    return generate_dataset(11, SPECS, START, END)


@pytest.fixture
def source(dataset: dict) -> Iterator[SourceServer]:
    with SourceServer(dataset, page_size=10, now=MIDDLE) as server:
        yield server


@pytest.fixture
def platform(tmp_path: Path, pg_admin: str, db_prefix: str) -> Iterator[LocalPlatform]:
    with local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as p:
        yield p


def store_rows(pg_admin: str, db_prefix: str, store: str, tenant_id: str) -> list[tuple]:
    """Read a tenant's facts straight from the store database, as superuser (bypassing the API)."""
    from tenant_analytics.local.postgres import with_database

    url = with_database(pg_admin, f"{db_prefix}_{store.replace('-', '_')}")
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT ticket_id, status, updated_at FROM support.tickets WHERE tenant_id = %s ORDER BY ticket_id",
            (tenant_id,),
        ).fetchall()


def expected_rows(versions: list, as_of: datetime) -> list[tuple]:
    latest = latest_versions(versions, as_of)
    return [(i, t["status"], parse_timestamp(t["updated_at"])) for i, t in sorted(latest.items())]


def daily_counts(versions: list, as_of: datetime) -> list[list]:
    per_day = Counter(
        parse_timestamp(t["created_at"]).date().isoformat() for t in latest_versions(versions, as_of).values()
    )
    return [[day, n] for day, n in sorted(per_day.items())]


def served(data: SupportDataset, as_of: datetime) -> Raw:
    """What the source shows of a tenant at ``as_of``, as the reference computations take it."""
    t = data.tenant_id
    return {
        "tickets": [(t, r) for r in latest_versions(data.tickets, as_of).values()],
        "events": [(t, r) for r in events_until(data.ticket_events, as_of)],
        "users": [(t, r) for r in latest_users(data.users, as_of).values()],
        "organizations": [(t, r) for r in latest_organizations(data.organizations, as_of).values()],
        "groups": [(t, r) for r in data.groups],
    }


def read_store(pg_admin: str, db_prefix: str, store: str, statement: str, tenant_id: str) -> list[tuple]:
    from tenant_analytics.local.postgres import with_database

    url = with_database(pg_admin, f"{db_prefix}_{store.replace('-', '_')}")
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(statement, (tenant_id,)).fetchall()


def failures(execution: dict) -> dict[str, str]:
    return {f["tenant_id"]: f["error"] for b in execution["output"]["batches"] for f in b["failed"]}


def test_two_hours_load_everything_once_and_only_changes_move(
    platform: LocalPlatform, source: SourceServer, dataset: dict, pg_admin: str, db_prefix: str
) -> None:
    # Given three tenants registered against a server that speaks the export protocol
    for spec in SPECS:
        platform.add_tenant(spec.tenant_id, source.base_url(spec.tenant_id))

    # When hour 1 runs, then the source moves on, then hour 2 runs
    first = platform.run_hour()
    tenant = platform.registry.get("alpha")
    rows_after_first = store_rows(pg_admin, db_prefix, tenant.store, "alpha")
    source.set_now(END)
    second = platform.run_hour()

    # Then both runs succeed, and each store equals the source's latest version of every ticket, no duplicates
    assert first["status"] == second["status"] == "SUCCEEDED"
    assert failures(first) == failures(second) == {}
    assert rows_after_first == expected_rows(dataset["alpha"], MIDDLE)
    for spec in SPECS:
        t = platform.registry.get(spec.tenant_id)
        assert store_rows(pg_admin, db_prefix, t.store, spec.tenant_id) == expected_rows(dataset[spec.tenant_id], END)
        assert t.size_rows == len(latest_versions(dataset[spec.tenant_id], END))
        assert t.data_version == 2
        # and the query API answers the tenant's own daily counts
        assert platform.query(spec.tenant_id, DAILY).rows == daily_counts(dataset[spec.tenant_id], END)


def test_every_stream_lands_and_derived_tables_equal_a_replay_of_all_source_data(
    tmp_path: Path, pg_admin: str, db_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from tenant_analytics import constants as c
    from tenant_analytics.settings import get_settings

    # Given a tenant whose source serves tickets, events, users, organizations and groups, on a platform that
    # compacts a curated history once it spans more than one file
    monkeypatch.setenv(c.ENV_HISTORY_COMPACT_AFTER_FILES, "1")
    data = generate_support_data(5, [TenantSpec("delta", 40)], START, END)["delta"]
    with (
        SourceServer({"delta": data}, page_size=25, now=MIDDLE) as server,
        local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as platform,
    ):
        platform.add_tenant("delta", server.base_url("delta"))

        # When hour 1 runs, the source moves on (new versions, events, user changes) twice, and an hour runs after
        # each move
        first = platform.run_hour()
        server.set_now(MIDDLE + (END - MIDDLE) / 2)
        second = platform.run_hour()
        history = boto3.client("s3").list_objects_v2(
            Bucket=get_settings().curated_bucket, Prefix=f"{c.HISTORY_SUPPORT_PREFIX}/ticket_events/tenant_id=delta/"
        )
        compacted = [o["Key"] for o in history.get("Contents", []) if o["Key"].endswith(".parquet")]
        server.set_now(END)
        third = platform.run_hour()
        store = platform.registry.get("delta").store

    # Then every run succeeds, the second left the ticket events' history in one compacted file (the third read it)
    assert failures(first) == failures(second) == failures(third) == {}
    assert len(compacted) == 1 and "/batch=compacted-" in compacted[0], compacted
    # and every curated table equals an independent computation from all served data
    raw = served(data, END)

    def rows(statement: str) -> list[tuple]:
        return read_store(pg_admin, db_prefix, store, statement, "delta")

    users = latest_users(data.users, END)
    assert rows("SELECT user_id, name, role FROM support.users WHERE tenant_id = %s ORDER BY 1") == [
        (i, u["name"], u["role"]) for i, u in sorted(users.items())
    ]
    orgs = latest_organizations(data.organizations, END)
    assert rows("SELECT organization_id, name FROM support.organizations WHERE tenant_id = %s ORDER BY 1") == [
        (i, o["name"]) for i, o in sorted(orgs.items())
    ]
    assert rows("SELECT group_id, name FROM support.groups WHERE tenant_id = %s ORDER BY 1") == sorted(
        (g["id"], g["name"]) for g in data.groups
    )
    events = events_until(data.ticket_events, END)
    assert rows("SELECT event_id FROM support.ticket_events WHERE tenant_id = %s ORDER BY 1") == sorted(
        (e["id"],) for e in events
    )
    tickets = latest_versions(data.tickets, END)
    names = rows(
        "SELECT ticket_id, requester_name, group_name, organization_name FROM support.tickets "
        "WHERE tenant_id = %s ORDER BY 1"
    )
    groups = {g["id"]: g["name"] for g in data.groups}
    assert names == [
        (
            i,
            users.get(t["requester_id"], {}).get("name"),
            groups.get(t["group_id"]),
            orgs.get(t["organization_id"], {}).get("name"),
        )
        for i, t in sorted(tickets.items())
    ]
    metrics = rows(
        "SELECT ticket_id, created_at, current_status, first_reply_at, first_reply_seconds, solved_at, "
        "full_resolution_seconds, reopens, replies, agent_touches FROM support.ticket_metrics WHERE tenant_id = %s"
    )
    assert {("delta", r[0]): r[1:] for r in metrics} == expected_metrics(raw)
    daily = rows("SELECT day, created, solved, reopened, backlog FROM support.daily_ticket_counts WHERE tenant_id = %s")
    assert {("delta", r[0]): r[1:] for r in daily} == expected_daily(raw, None, None)
    # and the refresh step brought the daily ticket model up to date with the same data
    created: Counter = Counter()
    solved: Counter = Counter()
    for t in tickets.values():
        key = (parse_timestamp(t["created_at"]).date(), t["via"]["channel"] or "unknown", t["priority"] or "none")
        created[key] += 1
        solved[key] += t["status"] in ("solved", "closed")
    daily_model = rows(
        "SELECT day::date, channel, priority, tickets_created, tickets_solved FROM models.tickets_daily "
        "WHERE tenant_id = %s"
    )
    assert {(d, ch, p): (n, s) for d, ch, p, n, s in daily_model} == {k: (created[k], solved[k]) for k in created}


def test_a_run_with_no_changes_moves_nothing(platform: LocalPlatform, source: SourceServer) -> None:
    # Given a tenant loaded once
    platform.add_tenant("alpha", source.base_url("alpha"))
    platform.run_hour()

    # When the next run finds nothing new at the source
    again = platform.run_hour()

    # Then the tenant is reported unchanged and its data_version stays
    assert again["output"]["batches"][0]["unchanged"] == ["alpha"]
    assert platform.registry.get("alpha").data_version == 1


def test_unreachable_and_malformed_sources_fail_alone_and_leave_no_partial_data(
    platform: LocalPlatform, source: SourceServer, dataset: dict, pg_admin: str, db_prefix: str
) -> None:
    # Given one healthy tenant, one whose source URL is a closed port, one whose second page is malformed
    platform.add_tenant("alpha", source.base_url("alpha"))
    platform.add_tenant("gone", "http://127.0.0.1:9/tenants/gone")
    platform.add_tenant("beta", source.base_url("beta"))

    # When the run executes with beta's second page malformed (10 tickets a page: beta has several pages)
    execution = _run_with_fault_on_tenant(platform, source, "beta", page=2)

    # Then the run succeeds, alpha is loaded, the two others failed with a message naming what was wrong
    errors = failures(execution)
    assert execution["status"] == "SUCCEEDED"
    assert set(errors) == {"gone", "beta"}
    assert "127.0.0.1:9" in errors["gone"] and "cannot connect" in errors["gone"]
    assert "page 2" in errors["beta"]
    assert store_rows(pg_admin, db_prefix, platform.registry.get("alpha").store, "alpha") == expected_rows(
        dataset["alpha"], MIDDLE
    )
    # and nothing of beta reached its store
    assert store_rows(pg_admin, db_prefix, platform.registry.get("beta").store, "beta") == []
    listed = {t.tenant_id: t for t in platform.registry.list()}
    assert listed["beta"].status is TenantStatus.FAILED and "page 2" in (listed["beta"].last_error or "")

    # When the fault is gone and the next hour runs
    second = platform.run_hour()

    # Then beta is complete (the page landed before the fault is not lost) and active again
    assert "beta" not in failures(second)
    assert store_rows(pg_admin, db_prefix, platform.registry.get("beta").store, "beta") == expected_rows(
        dataset["beta"], MIDDLE
    )
    assert platform.registry.get("beta").status is TenantStatus.ACTIVE


def _run_with_fault_on_tenant(platform: LocalPlatform, source: SourceServer, tenant_id: str, page: int) -> dict:
    """Run an hour with a malformed answer to the ``page``-th request for ``tenant_id``."""
    from unittest import mock

    import requests

    real_get = requests.Session.get
    seen = {"n": 0}

    def get(self, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        if f"/tenants/{tenant_id}/" in url:
            seen["n"] += 1
            if seen["n"] == page:
                source.inject("malformed_json", count=1)
        return real_get(self, url, *args, **kwargs)

    with mock.patch.object(requests.Session, "get", get):
        return platform.run_hour()


def test_bad_input_fails_at_once_with_what_is_allowed(platform: LocalPlatform, source: SourceServer) -> None:
    # Given a registered tenant
    platform.add_tenant("alpha", source.base_url("alpha"))

    # When the state machine is started with unknown input and with an unfinished hour
    unknown = platform.run_hour({"tenant": "alpha"})
    future = platform.run_hour({"hour": "2999-01-01T00:00:00Z"})

    # Then both fail before anything ran, naming the field and what is allowed
    assert unknown["status"] == future["status"] == "FAILED"
    assert unknown["error"] == future["error"] == "InvalidInput"
    message = json.loads(unknown["cause"])["errorMessage"]  # the Lambda error, as Step Functions reports it
    assert message.startswith("unknown input field(s) ['tenant']; allowed input: {}") and '"tenants"' in message
    assert "has not completed yet" in json.loads(future["cause"])["errorMessage"]
    assert platform.registry.get("alpha").data_version == 0


def test_transform_failure_is_recorded_and_the_execution_succeeds(
    platform: LocalPlatform, source: SourceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tenants whose Spark run fails
    for spec in SPECS[:2]:
        platform.add_tenant(spec.tenant_id, source.base_url(spec.tenant_id))
    import glue_jobs.transform_support as job

    def broken(spark, args):  # type: ignore[no-untyped-def]
        raise RuntimeError("executor lost")

    monkeypatch.setattr(job, "run", broken)

    # When the hour runs
    execution = platform.run_hour()

    # Then the execution succeeds with both tenants failed at the transform, recorded in the registry
    assert execution["status"] == "SUCCEEDED"
    errors = failures(execution)
    assert set(errors) == {"alpha", "beta"} and all("ended FAILED" in e for e in errors.values())
    assert all(t.status is TenantStatus.FAILED for t in platform.registry.list())


def test_one_tenant_failing_its_transform_among_twenty_fails_alone(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch, pg_admin: str, db_prefix: str
) -> None:
    # Given twenty small tenants packed into one Spark run, one of whose data always breaks the transform
    specs = [TenantSpec(f"t{i:02d}", 3) for i in range(20)]
    data = generate_dataset(23, specs, START, END)
    import glue_jobs.transform_support as job

    real_run = job.run
    running, peak, counting = 0, 0, threading.Lock()

    def run(spark, args):  # type: ignore[no-untyped-def]
        nonlocal running, peak
        with counting:
            running += 1
            peak = max(peak, running)
        try:
            manifest = spark.sparkContext.wholeTextFiles(args.manifest).first()[1]
            if "tenant_id=t07/" in manifest:
                raise RuntimeError("corrupt input for t07")
            return real_run(spark, args)
        finally:
            with counting:
                running -= 1

    monkeypatch.setattr(job, "run", run)
    with SourceServer(data, now=END) as server:
        for spec in specs:
            platform.add_tenant(spec.tenant_id, server.base_url(spec.tenant_id))

        # When the hour runs
        execution = platform.run_hour()

    # Then the execution succeeds, nineteen tenants are loaded, and t07's failure is recorded and reported, in
    # the one batch's outcome
    assert execution["status"] == "SUCCEEDED"
    batches = execution["output"]["batches"]
    assert len(batches) == 1
    assert sorted(batches[0]["retried_alone"]) == sorted(s.tenant_id for s in specs)
    assert sorted(batches[0]["loaded"]) == sorted(s.tenant_id for s in specs if s.tenant_id != "t07")
    assert set(failures(execution)) == {"t07"} and "ended FAILED" in failures(execution)["t07"]
    listed = {t.tenant_id: t for t in platform.registry.list()}
    assert listed["t07"].status is TenantStatus.FAILED
    for spec in specs:
        if spec.tenant_id != "t07":
            t = listed[spec.tenant_id]
            assert t.status is TenantStatus.ACTIVE and t.data_version == 1
            assert store_rows(pg_admin, db_prefix, t.store, t.tenant_id) == expected_rows(data[t.tenant_id], END)
    # and the tenants ran again side by side, not one after another
    assert peak > 1


def test_bad_records_are_quarantined_with_reasons_and_the_rest_loads(
    platform: LocalPlatform, source: SourceServer, dataset: dict, pg_admin: str, db_prefix: str
) -> None:
    import boto3

    from tenant_analytics.settings import get_settings

    # Given a source that corrupts one record of each of the next three pages
    platform.add_tenant("alpha", source.base_url("alpha"))
    source.inject("malformed_record", count=3)

    # When the hour runs
    execution = platform.run_hour()

    # Then the run succeeds, three records are quarantined with their reasons, every other ticket is loaded
    assert execution["status"] == "SUCCEEDED" and failures(execution) == {}
    assert execution["output"]["batches"][0]["records_quarantined"] == 3
    s3 = boto3.client("s3")
    bucket = get_settings().raw_bucket
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/support/tickets/tenant_id=alpha/")["Contents"]
    ]
    notes = [
        json.loads(line)
        for k in keys
        for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()
    ]
    assert len(notes) == 3 and all(n["reason"].startswith("field '") for n in notes)
    loaded = {row[0] for row in store_rows(pg_admin, db_prefix, platform.registry.get("alpha").store, "alpha")}
    bad_ids = {n["record"].get("id") for n in notes}
    expected = {i for i in latest_versions(dataset["alpha"], MIDDLE)}
    assert loaded <= expected and len(expected - loaded) <= 3
    assert loaded.isdisjoint({i for i in bad_ids if isinstance(i, int)})


def test_a_bad_record_of_another_stream_is_quarantined_under_that_stream(
    platform: LocalPlatform, pg_admin: str, db_prefix: str
) -> None:
    import dataclasses

    import boto3

    from tenant_analytics.settings import get_settings

    # Given a tenant without tickets whose source corrupts one user of the users export (the second request)
    data = dataclasses.replace(generate_support_data(6, [TenantSpec("eta", 30)], START, END)["eta"], tickets=[])
    with SourceServer({"eta": data}, page_size=50, now=END) as server:
        platform.add_tenant("eta", server.base_url("eta"))
        server.inject("slow", count=1, delay=0.0)  # the tickets export's one request answers normally
        server.inject("malformed_record", count=1)

        # When the hour runs
        execution = platform.run_hour()

    # Then the run succeeds, the user is quarantined under users/ with its reason, the other users are loaded
    assert execution["status"] == "SUCCEEDED" and failures(execution) == {}
    s3 = boto3.client("s3")
    bucket = get_settings().raw_bucket
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/support/")["Contents"]
    assert {o["Key"].split("/")[2] for o in listed} == {"users"}
    notes = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]
    assert len(notes) == 1 and notes[0]["reason"].startswith("field '")
    users = read_store(
        pg_admin,
        db_prefix,
        platform.registry.get("eta").store,
        "SELECT user_id FROM support.users WHERE tenant_id = %s",
        "eta",
    )
    assert len(users) == len(latest_users(data.users, END)) - 1


def test_source_faults_at_a_fifth_of_requests_give_the_same_store(
    tmp_path: Path, pg_admin: str, db_prefix: str, dataset: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenant_analytics import constants as c

    # Given sources failing a fifth of requests: 500s, 429s, and answers slower than the client waits
    monkeypatch.setenv(c.ENV_SOURCE_TIMEOUT, "0.5")
    with (
        SourceServer(dataset, page_size=10, now=MIDDLE) as server,
        local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as platform,
    ):
        server.fault_rate(0.2, ["http_500", "http_429", "slow"], seed=3, delay=1.0)
        for spec in SPECS:
            platform.add_tenant(spec.tenant_id, server.base_url(spec.tenant_id))

        # When two hours run through the faults
        first = platform.run_hour()
        server.set_now(END)
        second = platform.run_hour()
        faults = server.faults_served

        # Then no tenant failed and every store equals the source's data, exactly as without faults
        assert failures(first) == failures(second) == {}
        for spec in SPECS:
            tenant = platform.registry.get(spec.tenant_id)
            assert store_rows(pg_admin, db_prefix, tenant.store, spec.tenant_id) == expected_rows(
                dataset[spec.tenant_id], END
            )
    # (and the faults did happen, of every kind)
    assert set(faults) == {"http_500", "http_429", "slow"} and sum(faults.values()) >= 3


def test_a_source_that_needs_credentials_gets_them_from_secrets_manager(
    platform: LocalPlatform, dataset: dict, pg_admin: str, db_prefix: str
) -> None:
    import boto3

    # Given a source that requires credentials for both tenants, one registered with its secret, one without
    boto3.client("secretsmanager").create_secret(
        Name="tenant-analytics/sources/alpha",
        SecretString=json.dumps({"email": "ops@alpha.test", "api_token": "s3cr3t"}),
    )
    creds = {"alpha": ("ops@alpha.test/token", "s3cr3t"), "beta": ("ops@beta.test/token", "other")}
    with SourceServer(dataset, now=MIDDLE, credentials=creds) as server:
        platform.add_tenant("alpha", server.base_url("alpha"), credentials_secret="tenant-analytics/sources/alpha")
        platform.add_tenant("beta", server.base_url("beta"))

        # When the hour runs
        execution = platform.run_hour()

    # Then alpha is loaded; beta fails with the source's 401 and nothing of it is loaded
    assert "401" in failures(execution)["beta"] and set(failures(execution)) == {"beta"}
    assert store_rows(pg_admin, db_prefix, platform.registry.get("alpha").store, "alpha") == expected_rows(
        dataset["alpha"], MIDDLE
    )
    assert "s3cr3t" not in json.dumps(execution["output"])


def test_a_tenant_past_the_large_threshold_runs_alone_on_emr_serverless(
    platform: LocalPlatform,
    source: SourceServer,
    dataset: dict,
    pg_admin: str,
    db_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    from tenant_analytics import constants as c
    from tenant_analytics.settings import get_settings

    # Given three tenants loaded once, then a large threshold that only alpha passes
    for spec in SPECS:
        platform.add_tenant(spec.tenant_id, source.base_url(spec.tenant_id))
    platform.run_hour()
    threshold = platform.registry.get("alpha").size_rows
    assert all(platform.registry.get(s.tenant_id).size_rows < threshold for s in SPECS[1:])
    monkeypatch.setenv(c.ENV_CLUSTER_BUDGETS, json.dumps({"poll_seconds": 0, "emr_threshold_rows": threshold}))
    get_settings.cache_clear()
    source.set_now(END)

    # When the next hour runs
    execution = platform.run_hour()

    # Then alpha ran alone on EMR Serverless (the same script), the others together on Glue, all loaded
    batches = {b["batch_id"]: b for b in execution["output"]["batches"]}
    assert batches["e0000"]["loaded"] == ["alpha"]
    assert sorted(batches["b0000"]["loaded"]) == ["beta", "gamma"]
    emr = boto3.client("emr-serverless")
    app_id = emr.list_applications()["applications"][0]["id"]
    runs = emr.list_job_runs(applicationId=app_id)["jobRuns"]
    assert [r["state"] for r in runs] == ["SUCCESS"]
    for spec in SPECS:
        t = platform.registry.get(spec.tenant_id)
        assert store_rows(pg_admin, db_prefix, t.store, spec.tenant_id) == expected_rows(dataset[spec.tenant_id], END)

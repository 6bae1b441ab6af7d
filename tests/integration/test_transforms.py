"""Spark transforms in local Spark against an independent plain-Python computation."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenant_analytics.local.spark import local_spark
from tenant_analytics.sources.synthetic import TenantSpec, generate_dataset, latest_versions, parse_timestamp
from tenant_analytics.transforms.manifest import TransformManifest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

START, END = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 20, tzinfo=UTC)


def land(root: Path, dataset: dict) -> TransformManifest:
    """Write every version as landed JSONL pages (several versions per ticket, with extra fields)."""
    tenants = {}
    for tenant_id, versions in dataset.items():
        folder = root / "tickets" / f"tenant_id={tenant_id}"
        folder.mkdir(parents=True)
        paths = []
        for n in range(0, len(versions), 40):
            page = folder / f"page-{n:012d}.jsonl"
            page.write_text("".join(json.dumps(v.ticket) + "\n" for v in versions[n : n + 40]))
            paths.append("file://" + str(page))
        tenants[tenant_id] = {"tickets": paths}
    return TransformManifest(raw_root="file://" + str(root) + "/", hour="2026-05-20T00:00:00+00:00", tenants=tenants)


def test_transform_job_keeps_the_latest_version_of_every_ticket(tmp_path: Path) -> None:
    import glue_jobs.transform_support as job

    # Given landed pages of two tenants, with a malformed record and an unknown extra field
    dataset = generate_dataset(5, [TenantSpec("t1", 60), TenantSpec("t2", 25)], START, END)
    manifest = land(tmp_path / "raw", dataset)
    bad = tmp_path / "raw" / "tickets" / "tenant_id=t1" / "page-bad.jsonl"
    bad.write_text('{"subject": "no id"}\n')
    manifest.tenants["t1"]["tickets"].append("file://" + str(bad))
    (tmp_path / "manifest.json").write_text(manifest.to_json())

    # When the job script runs with its arguments
    spark = local_spark()
    out = tmp_path / "out"
    written = job.main(
        ["transform_support.py", "--manifest", f"file://{tmp_path}/manifest.json", "--output", f"file://{out}"]
    )

    # Then each tenant's CSV holds exactly the latest version of each ticket, computed independently
    for tenant_id, versions in dataset.items():
        expected = {
            i: (t["status"], t["via"]["channel"], parse_timestamp(t["updated_at"]))
            for i, t in latest_versions(versions, END).items()
        }
        rows = spark.read.csv(str(out / "tickets" / f"tenant_id={tenant_id}"), inferSchema=False).collect()
        got = {int(r[0]): (r[3], r[5], datetime.fromisoformat(r[2].replace("Z", "+00:00"))) for r in rows}
        assert got == expected
    assert written == sum(len(latest_versions(v, END)) for v in dataset.values())


def test_daily_created_counts_equal_a_python_count() -> None:
    from tenant_analytics.transforms.support import daily_created

    spark = local_spark()
    tickets = [
        ("t1", 1, datetime(2026, 5, 1, 23, 59, tzinfo=UTC)),
        ("t1", 2, datetime(2026, 5, 2, 0, 0, tzinfo=UTC)),
        ("t1", 3, datetime(2026, 5, 2, 5, tzinfo=UTC)),
        ("t2", 1, datetime(2026, 5, 2, 6, tzinfo=UTC)),
    ]
    df = spark.createDataFrame(tickets, "tenant_id string, ticket_id long, created_at timestamp")
    got = {(r.tenant_id, r.day.isoformat()): r.tickets_created for r in daily_created(df).collect()}
    assert got == dict(Counter((t, c.date().isoformat()) for t, _, c in tickets))

"""Spark transforms in local Spark against an independent plain-Python computation."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tenant_analytics.local.spark import local_spark
from tenant_analytics.sources.records import validate_record
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


def _respelled(moment: str, n: int) -> str:
    """The same instant in another ISO-8601 spelling the sources' validation accepts."""
    at = parse_timestamp(moment)
    spellings = (
        at.astimezone(timezone(timedelta(hours=2))).isoformat(),  # 2026-05-01T12:00:00+02:00
        at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),  # fractional seconds
        at.isoformat(),  # +00:00
        at.astimezone(timezone(timedelta(hours=-5, minutes=-30))).strftime("%Y-%m-%dT%H:%M:%S%z"),  # -0530
    )
    return spellings[n % len(spellings)]


def test_every_iso_spelling_the_sources_accept_is_read_as_the_same_instant(tmp_path: Path) -> None:
    import glue_jobs.transform_support as job

    # Given landed tickets whose times carry offsets, fractions or basic-format zones instead of 'Z'
    dataset = generate_dataset(11, [TenantSpec("t1", 30)], START, END)
    for n, version in enumerate(dataset["t1"]):
        for field in ("created_at", "updated_at"):
            spelled = _respelled(version.ticket[field], n)
            assert validate_record("tickets", {**version.ticket, field: spelled}) is None  # sources accept it
            version.ticket[field] = spelled
    manifest = land(tmp_path / "raw", dataset)
    (tmp_path / "manifest.json").write_text(manifest.to_json())

    # When the job runs
    spark = local_spark()
    out = tmp_path / "out"
    job.main(["transform_support.py", "--manifest", f"file://{tmp_path}/manifest.json", "--output", f"file://{out}"])

    # Then every ticket is there, at the instant its spelling names (in UTC), as the latest version
    expected = {i: parse_timestamp(t["updated_at"]) for i, t in latest_versions(dataset["t1"], END).items()}
    rows = spark.read.csv(str(out / "tickets" / "tenant_id=t1"), inferSchema=False).collect()
    assert {int(r[0]): datetime.fromisoformat(r[2].replace("Z", "+00:00")) for r in rows} == expected


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


def _history_files(root: Path, tenant_id: str) -> list[Path]:
    return sorted((root / "tickets" / f"tenant_id={tenant_id}").rglob("*.parquet"))


def test_a_history_past_its_file_limit_is_rewritten_into_one_file_and_still_read_whole(tmp_path: Path) -> None:
    import glue_jobs.transform_support as job

    spark = local_spark()
    dataset = generate_dataset(11, [TenantSpec("t1", 40), TenantSpec("t2", 15)], START, END)
    history = tmp_path / "history"
    halves = [dataset["t1"][0::2], dataset["t1"][1::2]]

    def run(number: int, landed: dict, compact_after_files: int | None, attempt: int = 1) -> Path:
        manifest = land(tmp_path / f"raw{number}-{attempt}", landed)
        manifest = TransformManifest(
            raw_root=manifest.raw_root,
            hour=f"2026-05-20T0{number}:00:00+00:00",
            batch_id=f"b{number}",
            tenants=manifest.tenants,
            history_root=f"file://{history}/",
            history={t: {"tickets": [f"file://{p}" for p in _history_files(history, t)]} for t in manifest.tenants},
            compact_after_files=compact_after_files,
        )
        (tmp_path / f"manifest{number}.json").write_text(manifest.to_json())
        out = tmp_path / f"out{number}-{attempt}"
        job.main(
            [
                "transform_support.py",
                "--manifest",
                f"file://{tmp_path}/manifest{number}.json",
                "--output",
                f"file://{out}",
            ]
        )
        return out

    # Given half of t1's ticket versions landed by a run that appended them to its history, and run again (a re-run:
    # the same records twice in the history)
    run(1, {"t1": halves[0]}, None)
    run(1, {"t1": halves[0]}, None, attempt=2)
    before = _history_files(history, "t1")
    assert len(before) > 1

    # When a run with a limit of one file per history lands t1's other versions and t2's first
    out = run(2, {"t1": halves[1], "t2": dataset["t2"]}, compact_after_files=1)

    # Then t1's history is one file in a compacted folder, holding every version once, and the older files are gone
    after = _history_files(history, "t1")
    assert len(after) == 1 and after[0].parent.name.startswith("batch=compacted-") and not set(before) & set(after)
    rows = spark.read.parquet(str(after[0])).select("id", "updated_at", "status").collect()
    expected = Counter((v.ticket["id"], v.ticket["updated_at"], v.ticket["status"]) for v in dataset["t1"])
    assert Counter((r.id, r.updated_at, r.status) for r in rows) == Counter(dict.fromkeys(expected, 1))
    # and t2, under the limit, has its history appended as usual
    assert {p.parent.name for p in _history_files(history, "t2")} == {"batch=b2"}

    # And the tickets the run touched, and those a following run touches over the compacted history, are each the
    # latest of all the ticket's versions, older runs' included
    latest = latest_versions(dataset["t1"], END)
    third = halves[1][:5]
    for folder, landed in ((out, halves[1]), (run(3, {"t1": third}, compact_after_files=1), third)):
        rows = spark.read.csv(str(folder / "tickets" / "tenant_id=t1"), inferSchema=False).collect()
        got = {int(r[0]): (r[3], datetime.fromisoformat(r[2].replace("Z", "+00:00"))) for r in rows}
        touched = {v.ticket["id"] for v in landed} & set(latest)
        assert got == {i: (latest[i]["status"], parse_timestamp(latest[i]["updated_at"])) for i in touched}

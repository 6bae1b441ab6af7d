"""The batch manifest a Spark run reads: its JSON form and which histories the run compacts."""

from __future__ import annotations

import json

import pytest

from tenant_analytics.transforms.manifest import TransformManifest


def manifest(compact_after_files: int | None) -> TransformManifest:
    return TransformManifest(
        raw_root="s3://raw/support/",
        hour="2026-05-20T03:00:00+00:00",
        batch_id="b0000",
        tenants={"t1": {"tickets": ["s3://raw/support/tickets/tenant_id=t1/page-1.jsonl"]}, "t2": {}},
        history_root="s3://curated/history/",
        history={
            "t1": {"tickets": ["a.parquet", "b.parquet", "c.parquet"], "users": ["u.parquet"]},
            "t2": {"tickets": ["d.parquet", "e.parquet"]},
        },
        compact_after_files=compact_after_files,
    )


def test_the_histories_past_the_file_limit_are_the_ones_compacted() -> None:
    # Given a manifest whose histories span 3, 1 and 2 files, with a limit of 2
    given = manifest(2)

    # When the run asks which histories it rewrites
    tickets, users = given.compacting("tickets"), given.compacting("users")

    # Then only t1's tickets (3 files > 2) are compacted, with the files they replace
    assert tickets == {"t1": ["a.parquet", "b.parquet", "c.parquet"]}
    assert users == {}
    assert manifest(None).compacting("tickets") == {}


def test_the_file_limit_survives_the_json_round_trip() -> None:
    assert TransformManifest.from_json(manifest(2).to_json()) == manifest(2)
    assert TransformManifest.from_json(manifest(None).to_json()) == manifest(None)


@pytest.mark.parametrize("value", [0, -3, "12", 2.5, True])
def test_a_file_limit_that_is_not_a_positive_integer_is_rejected_by_name(value: object) -> None:
    document = json.loads(manifest(None).to_json())
    document["compact_after_files"] = value
    with pytest.raises(ValueError, match="manifest field 'compact_after_files' must be a positive integer"):
        TransformManifest.from_json(json.dumps(document))

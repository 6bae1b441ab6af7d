"""Landing messaging data on the embedded PostgreSQL: late and repeated batches converge, RLS isolates tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.messaging import (
    CampaignVersion,
    MessagingBatch,
    MessagingDataset,
    MessagingTenantSpec,
    generate_messaging_data,
    latest_campaigns,
    latest_templates,
    unique_events,
)
from tenant_analytics.stores.messaging import (
    MessagingMergeStats,
    ensure_messaging_schema,
    events_csv_chunks,
    merge_messaging,
)

pytestmark = pytest.mark.xdist_group("messaging")

START = datetime(2026, 1, 5, tzinfo=UTC)
END = START + timedelta(days=1)
SEED = 11
CUT = 12  # batches before this hour form the first landing, the rest the second


def _land(conn: psycopg.Connection[Any], tenant_id: str, batches: list[MessagingBatch]) -> MessagingMergeStats:
    events = [event for batch in batches for event in batch.events]
    campaigns = [version for batch in batches for version in batch.campaigns]
    templates = [version for batch in batches for version in batch.templates]
    return merge_messaging(conn, tenant_id, events_csv_chunks(events, rows_per_chunk=97), campaigns, templates)


def _table(conn: psycopg.Connection[Any], statement: str) -> list[tuple[Any, ...]]:
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        return conn.execute(statement).fetchall()


def _events_table(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return _table(
        conn,
        "SELECT tenant_id, message_id, event_type, event_at, campaign_id, template_id, channel, error_code "
        "FROM messaging.events ORDER BY tenant_id, message_id, event_type",
    )


def _expected_events(dataset: MessagingDataset, batches: list[MessagingBatch]) -> list[tuple[Any, ...]]:
    return [
        (e.tenant_id, e.message_id, e.event_type, e.event_at, e.campaign_id, e.template_id, e.channel, e.error_code)
        for e in unique_events(event for batch in batches for event in batch.events)
    ]


@pytest.fixture(scope="module")
def dataset() -> MessagingDataset:
    return generate_messaging_data(MessagingTenantSpec("acme", 600), SEED, START, END)


def test_late_receipts_a_rename_and_a_replayed_batch_converge_to_the_deduplicated_data(
    messaging_conn: psycopg.Connection[Any], dataset: MessagingDataset
) -> None:
    # Given a first landing, and a second one holding late receipts of first-landing messages, a campaign rename
    # and receipts that arrived in the first landing before their sent event
    first, second = dataset.batches[:CUT], dataset.batches[CUT:]
    sent_first = {e.message_id for b in first for e in b.events if e.event_type == "sent"}
    sent_second = {e.message_id for b in second for e in b.events if e.event_type == "sent"}
    assert any(e.message_id in sent_first for b in second for e in b.events if e.event_type != "sent")
    orphans = {e.message_id for b in first for e in b.events if e.event_type != "sent"} & sent_second
    assert orphans
    renamed = {v.campaign_id for b in second for v in b.campaigns}
    assert renamed & {v.campaign_id for b in first for v in b.campaigns}

    # When batch 1 lands
    one = _land(messaging_conn, "acme", first)

    # Then the table holds exactly batch 1, receipts without their sent event included
    assert _events_table(messaging_conn) == _expected_events(dataset, first)
    assert one.events_duplicate == one.events_in - len(_expected_events(dataset, first)) > 0
    landed = {row[0] for row in _table(messaging_conn, "SELECT message_id FROM messaging.events")}
    assert orphans <= landed

    # When batch 2 lands, then batch 2 again
    two = _land(messaging_conn, "acme", second)
    again = _land(messaging_conn, "acme", second)

    # Then events equal the whole dataset de-duplicated, master data its latest versions, and the replay changed
    # nothing
    assert _events_table(messaging_conn) == _expected_events(dataset, dataset.batches)
    assert two.events_inserted > 0 and two.campaigns_updated >= 1
    assert (again.events_inserted, again.events_duplicate) == (0, again.events_in)
    assert (again.campaigns_inserted, again.campaigns_updated, again.templates_inserted, again.templates_updated) == (
        0,
        0,
        0,
        0,
    )
    assert again.events_rows == len({e.key for e in dataset.events})
    campaigns = _table(
        messaging_conn, "SELECT tenant_id, campaign_id, name, updated_at FROM messaging.campaigns ORDER BY campaign_id"
    )
    assert campaigns == [
        (v.tenant_id, v.campaign_id, v.name, v.updated_at)
        for _, v in sorted(latest_campaigns(dataset.campaigns).items())
    ]
    templates = _table(
        messaging_conn,
        "SELECT tenant_id, template_id, name, category, updated_at FROM messaging.templates ORDER BY template_id",
    )
    assert templates == [
        (v.tenant_id, v.template_id, v.name, v.category, v.updated_at)
        for _, v in sorted(latest_templates(dataset.templates).items())
    ]


def test_an_older_campaign_version_landing_late_does_not_overwrite_a_newer_one(
    messaging_conn: psycopg.Connection[Any],
) -> None:
    # Given a campaign's newer version landed first
    old = CampaignVersion("acme", 1, "Spring sale", START)
    new = CampaignVersion("acme", 1, 'Spring sale, "final"', START + timedelta(hours=1))
    merge_messaging(messaging_conn, "acme", [], [new], [])

    # When the older version lands afterwards
    stats = merge_messaging(messaging_conn, "acme", [], [old], [])

    # Then the newer version stays
    assert (stats.campaigns_in, stats.campaigns_updated, stats.campaigns_inserted) == (1, 0, 0)
    assert _table(messaging_conn, "SELECT name, updated_at FROM messaging.campaigns") == [(new.name, new.updated_at)]


def test_the_query_role_sees_only_its_tenants_rows_and_cannot_write(messaging_conn: psycopg.Connection[Any]) -> None:
    # Given tenants 'ta' and 'tb' landed in the same tables
    for tenant in ("ta", "tb"):
        data = generate_messaging_data(MessagingTenantSpec(tenant, 30), SEED, START, END)
        _land(messaging_conn, tenant, data.batches)
    assert {row[0] for row in _table(messaging_conn, "SELECT DISTINCT tenant_id FROM messaging.events")} == {"ta", "tb"}

    # When the query role reads every table with app.tenant_id = 'ta' and no predicate of its own
    seen: dict[str, set[str]] = {}
    with messaging_conn.transaction():
        messaging_conn.execute("SET LOCAL ROLE ta_query")
        messaging_conn.execute("SELECT set_config('app.tenant_id', 'ta', true)")
        for table in ("events", "campaigns", "templates"):
            rows = messaging_conn.execute(f"SELECT DISTINCT tenant_id FROM messaging.{table}").fetchall()
            seen[table] = {row[0] for row in rows}

    # Then it sees rows of 'ta' only, and it may not write
    assert seen == {"events": {"ta"}, "campaigns": {"ta"}, "templates": {"ta"}}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), messaging_conn.transaction():
        messaging_conn.execute("SET LOCAL ROLE ta_query")
        messaging_conn.execute("SELECT set_config('app.tenant_id', 'ta', true)")
        messaging_conn.execute("DELETE FROM messaging.events")


def test_every_messaging_table_forces_row_level_security_and_the_schema_is_idempotent(
    messaging_conn: psycopg.Connection[Any],
) -> None:
    # When the schema is ensured again
    ensure_messaging_schema(messaging_conn)

    # Then every table is owned by the ETL role with row-level security enabled and forced
    rows = messaging_conn.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity FROM pg_class AS c "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = 'messaging' AND c.relkind = 'r' "
        "ORDER BY c.relname"
    ).fetchall()
    assert rows == [(name, "ta_etl", True, True) for name in ("campaigns", "events", "templates")]


def test_master_data_of_another_tenant_and_bad_tenant_ids_are_refused(messaging_conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidInput, match="tenant"):
        merge_messaging(messaging_conn, "acme", [], [CampaignVersion("globex", 1, "x", START)], [])
    with pytest.raises(InvalidInput):
        merge_messaging(messaging_conn, "Acme'--", [], [], [])
    assert _table(messaging_conn, "SELECT count(*) FROM messaging.campaigns") == [(0,)]

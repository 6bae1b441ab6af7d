"""The Redshift load batch, transpiled to PostgreSQL by sqlglot and run on the embedded server (S3 COPYs replaced by
COPY FROM STDIN of the same CSV files), lands exactly what the PostgreSQL merge lands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlglot

from tenant_analytics.sources.messaging import (
    MessagingBatch,
    MessagingTenantSpec,
    generate_messaging_data,
    latest_campaigns,
    unique_events,
)
from tenant_analytics.stores.messaging import (
    MessagingManifests,
    campaigns_csv_chunks,
    events_csv_chunks,
    redshift_merge_statements,
    templates_csv_chunks,
)

pytestmark = pytest.mark.xdist_group("messaging")

START = datetime(2026, 1, 5, tzinfo=UTC)
PREFIX = "s3://tenant-analytics-curated/curated/messaging/run=r1/tenant_id=acme/"
MANIFESTS = MessagingManifests(
    events=PREFIX + "events.manifest", campaigns=PREFIX + "campaigns.manifest", templates=PREFIX + "templates.manifest"
)
ROLE = "arn:aws:iam::111111111111:role/redshift-copy"


def _run_batch(url: str, batches: list[MessagingBatch]) -> tuple[Any, ...]:
    """Run the batch in a session of its own (as the Data API does); return the last statement's row."""
    files: dict[str, Iterator[bytes]] = {
        "stage_events": events_csv_chunks(e for b in batches for e in b.events),
        "stage_campaigns": campaigns_csv_chunks(v for b in batches for v in b.campaigns),
        "stage_templates": templates_csv_chunks(v for b in batches for v in b.templates),
    }
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cur:
        for statement in redshift_merge_statements("acme", MANIFESTS, ROLE):
            if statement.startswith("COPY "):
                head = statement.split(" FROM ")[0]
                with cur.copy(f"{head} FROM STDIN WITH (FORMAT csv)") as copy:
                    for chunk in files[head.split()[1]]:
                        copy.write(chunk)
            else:
                cur.execute(sqlglot.transpile(statement, read="redshift", write="postgres")[0])
        row = cur.fetchone()
    assert row is not None
    return row


def test_the_redshift_batch_converges_like_the_postgres_merge(messaging_conn: psycopg.Connection[Any]) -> None:
    # Given a tenant's data in two landings
    data = generate_messaging_data(MessagingTenantSpec("acme", 300), 5, START, START + timedelta(days=1))
    first, second = data.batches[:12], data.batches[12:]
    url = messaging_conn.info.dsn

    # When the Redshift batch runs for landing 1, landing 2, and landing 2 again
    _run_batch(url, first)
    _run_batch(url, second)
    replay = _run_batch(url, second)

    # Then the events are the de-duplicated data, campaigns their latest versions, and the replay changed nothing
    events = messaging_conn.execute(
        "SELECT message_id, event_type, event_at, campaign_id, template_id, channel, error_code FROM messaging.events "
        "WHERE tenant_id = 'acme' ORDER BY message_id, event_type"
    ).fetchall()
    assert events == [
        (e.message_id, e.event_type, e.event_at, e.campaign_id, e.template_id, e.channel, e.error_code)
        for e in unique_events(data.events)
    ]
    campaigns = messaging_conn.execute("SELECT campaign_id, name, updated_at FROM messaging.campaigns ORDER BY 1")
    assert campaigns.fetchall() == [
        (v.campaign_id, v.name, v.updated_at) for _, v in sorted(latest_campaigns(data.campaigns).items())
    ]
    events_in = sum(len(b.events) for b in second)
    # events_in, inserted, duplicate, campaigns_in, inserted, updated, templates_in, inserted, updated, rows
    assert replay[:3] == (events_in, 0, events_in)
    assert (replay[4], replay[5], replay[7], replay[8]) == (0, 0, 0, 0)
    assert replay[9] == len(events)

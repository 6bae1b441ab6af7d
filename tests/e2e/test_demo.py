"""`make demo` end to end: its per-tenant numbers equal counts computed independently from the generated data."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tenant_analytics.local import demo
from tenant_analytics.local.platform import local_platform
from tenant_analytics.sources.messaging import (
    MessagingTenantSpec,
    generate_messaging_data,
    reference_campaign_channel_hours,
    unique_events,
)
from tenant_analytics.sources.synthetic import (
    changed_since,
    default_tenants,
    generate_dataset,
    latest_versions,
    parse_timestamp,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]


def expected_summaries() -> dict[str, tuple[int, str, int]]:
    """tenant -> (tickets, busiest day, tickets created that day), from the generator alone."""
    dataset = generate_dataset(demo.DEMO_SEED, default_tenants(), demo.DEMO_START, demo.DEMO_END)
    out = {}
    for tenant_id, versions in dataset.items():
        tickets = latest_versions(versions, demo.DEMO_END)
        per_day = Counter(parse_timestamp(t["created_at"]).date().isoformat() for t in tickets.values())
        top = max(per_day.values())
        day = min(d for d, n in per_day.items() if n == top)
        out[tenant_id] = (len(tickets), day, top)
    return out


def test_demo_numbers_equal_an_independent_count(tmp_path: Path, pg_admin: str, db_prefix: str, monkeypatch) -> None:
    # Given the demo's embedded defaults, pointed at the test PostgreSQL
    real = local_platform
    monkeypatch.setattr(demo, "local_platform", lambda home: real(home, pg_admin=pg_admin, db_prefix=db_prefix))
    lines: list[str] = []

    # When the demo runs
    result = demo.run_demo(tmp_path / "demo", say=lines.append)
    summaries = result.summaries

    # Then every tenant's loaded tickets and busiest day equal the generator's own numbers
    expected = expected_summaries()
    got = {s.tenant_id: (s.tickets_loaded, s.busiest_day, s.busiest_day_created) for s in summaries}
    assert got == expected
    assert {s.tier for s in summaries} == {"aurora", "redshift"}
    # and two hours ran (plus one publish per messaging batch), the second moving only what changed
    batches = {m.tenant_id: m.batches for m in result.messaging}
    assert all(s.data_version == 2 + batches.get(s.tenant_id, 0) for s in summaries)
    exported = [int(m.group(1)) for line in lines if (m := re.search(r"[(, ]tickets (\d+)[,)]", line))]
    dataset = generate_dataset(demo.DEMO_SEED, default_tenants(), demo.DEMO_START, demo.DEMO_END)
    first = sum(len(latest_versions(v, demo.DEMO_FIRST_HOUR_SEES)) for v in dataset.values())
    changed = sum(len(changed_since(v, demo.DEMO_FIRST_HOUR_SEES, demo.DEMO_END)) for v in dataset.values())
    assert exported == [first, changed] and changed < first
    assert any("busiest day" in line for line in lines)
    # and the live change stream's bins, read through the realtime API, count each tenant's inserts exactly
    for tenant_id, (created, sent) in result.live.totals.items():
        inserts = Counter(
            c["table"] for c in result.live.changes if c["type"] == "insert" and c["data"]["account_id"] == tenant_id
        )
        assert (created, sent) == (inserts["tickets"], inserts["messages"])
    assert len(result.live.totals) == len(default_tenants())
    # and the messaging tenants' daily model equals a replay of every event that arrived
    for m in result.messaging:
        spec = MessagingTenantSpec(m.tenant_id, demo.MESSAGING_SIZES[m.tenant_id])
        data = generate_messaging_data(spec, demo.DEMO_SEED, demo.MESSAGING_START, demo.MESSAGING_END)
        hours = reference_campaign_channel_hours(data.events, data.campaigns)
        assert (m.sent, m.delivered, m.read, m.failed) == (
            sum(h.sent for h in hours),
            sum(h.delivered for h in hours),
            sum(h.read for h in hours),
            sum(h.failed for h in hours),
        )
        assert m.events_landed == len(unique_events(data.events))
    assert [m.tenant_id for m in result.messaging] == list(demo.MESSAGING_SIZES)

"""`make demo`: synthetic tenants served by a local source API, one hourly pipeline run through the real state
machine, and each tenant's numbers read back through the query API."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tenant_analytics.cdc.synthetic import ticket_changes
from tenant_analytics.local.api import LocalApiGateway
from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.local.stream import replay_to_stream
from tenant_analytics.models import RefreshRecord
from tenant_analytics.pipeline import runtime
from tenant_analytics.sources.messaging import MessagingTenantSpec, generate_messaging_data
from tenant_analytics.sources.server import SourceServer
from tenant_analytics.sources.synthetic import TenantSpec, default_tenants, generate_support_data
from tenant_analytics.tenants.models import Tier

DEMO_SEED = 42
DEMO_START = datetime(2026, 10, 1, tzinfo=UTC)
DEMO_END = datetime(2026, 11, 1, tzinfo=UTC)
DEMO_FIRST_HOUR_SEES = datetime(2026, 10, 31, tzinfo=UTC)  # the source's clock at the first run
LIVE_CHANGES = 2000
DAILY_QUERY = {
    "dataset": "tickets",
    "measures": ["tickets_created"],
    "time": {"dimension": "created_at", "granularity": "day"},
    "limit": 10000,
}


@dataclass(frozen=True)
class TenantSummary:
    tenant_id: str
    tier: str
    tickets_loaded: int
    busiest_day: str | None
    busiest_day_created: int
    data_version: int


def busiest(rows: list[list[object]]) -> tuple[str | None, int]:
    """The day with most tickets created (earliest on a tie) and its count."""
    best: tuple[str | None, int] = (None, 0)
    for day, count in rows:
        if isinstance(count, int) and (count > best[1] or (count == best[1] and str(day) < str(best[0]))):
            best = (str(day), count)
    return best


def summarize(platform: LocalPlatform, gateway: LocalApiGateway) -> list[TenantSummary]:
    """Read every tenant's numbers back through the API, each with its own token."""
    summaries = []
    for tenant in platform.registry.list():
        response = platform.call_api(tenant.tenant_id, "POST", "/v1/query", body=DAILY_QUERY, gateway=gateway)
        if response.status != 200:
            raise RuntimeError(f"query for {tenant.tenant_id} failed: {response.status} {response.body}")
        answer = response.json()
        day, count = busiest(answer["rows"])
        summaries.append(
            TenantSummary(tenant.tenant_id, tenant.tier.value, tenant.size_rows, day, count, answer["data_version"])
        )
    return summaries


LIVE_METRICS = ("tickets_created", "messages_sent")


@dataclass
class LiveStream:
    """The change stream the demo replayed, and what the realtime API answered per tenant."""

    changes: list[dict[str, Any]]
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)


def live_stream(home: Path, tenants: list[str], say: Callable[[str], None]) -> LiveStream:
    """Replay ten minutes of binlog changes (Maxwell JSON) through Kinesis and the aggregator."""
    changes = ticket_changes(
        LIVE_CHANGES, start=datetime.now(UTC) - timedelta(minutes=10), seconds=540, tenants=tuple(tenants), seed=5
    )
    capture = home / "live-changes.jsonl"
    capture.write_text("".join(json.dumps(c) + "\n" for c in changes))
    replay = replay_to_stream(capture)
    say(
        f"live change stream: {replay.records} binlog changes -> Kinesis -> aggregator -> 10-second bins "
        f"({replay.batches} batch(es), {sum(replay.rejected.values())} rejected)"
    )
    return LiveStream(changes=changes)


def realtime_total(platform: LocalPlatform, gateway: LocalApiGateway, tenant_id: str, metric: str) -> int:
    """The tenant's count of ``metric`` over the last 15 minutes, through GET /v1/realtime."""
    response = platform.call_api(
        tenant_id, "GET", "/v1/realtime", query={"metric": metric, "last": "15m"}, gateway=gateway
    )
    if response.status != 200:
        raise RuntimeError(f"realtime query for {tenant_id} failed: {response.status} {response.body}")
    return sum(int(b["n"]) for b in response.json()["bins"])


MESSAGING_SIZES = {"acme": 4000, "globex": 2000, "initech": 1300}  # messages over the window
MESSAGING_START = datetime(2026, 10, 28, tzinfo=UTC)
MESSAGING_END = datetime(2026, 10, 31, tzinfo=UTC)
MESSAGING_BATCH_HOURS = 12
TENANT_DAILY_SQL = (
    "SELECT COALESCE(SUM(sent), 0), COALESCE(SUM(delivered), 0), COALESCE(SUM(opened), 0), COALESCE(SUM(failed), 0) "
    "FROM models.tenant_daily WHERE tenant_id = %s"
)


@dataclass(frozen=True)
class MessagingSummary:
    tenant_id: str
    batches: int
    events_landed: int
    sent: int
    delivered: int
    read: int
    failed: int


def messaging_streams(platform: LocalPlatform, seed: int, say: Callable[[str], None]) -> list[MessagingSummary]:
    """Land three days of sends and late receipts batch by batch, each followed by an incremental refresh."""
    datasets = [
        generate_messaging_data(
            MessagingTenantSpec(tenant_id, messages),
            seed,
            MESSAGING_START,
            MESSAGING_END,
            batch_hours=MESSAGING_BATCH_HOURS,
        )
        for tenant_id, messages in MESSAGING_SIZES.items()
    ]
    say(
        f"messaging streams: sends and delivery receipts of {len(datasets)} tenants land in "
        f"{MESSAGING_BATCH_HOURS}-hour batches (receipts late and out of order); models refresh after each"
    )
    landed: dict[str, int] = {}
    batches: dict[str, int] = {}
    last: list[RefreshRecord] = []
    for index in range(max(len(d.batches) for d in datasets)):
        for data in datasets:
            if index < len(data.batches):
                landing = platform.land_messaging(data.tenant_id, data.batches[index])
                landed[data.tenant_id] = landed.get(data.tenant_id, 0) + landing.stats.events_inserted
                batches[data.tenant_id] = batches.get(data.tenant_id, 0) + 1
                last = landing.refreshed
    say("  the last refresh (one tenant's changes, each model in dependency order):")
    for record in last:
        say(
            f"    {record.model:<25} {record.mode:<11} {record.rows_changed:>6} rows"
            f"  {record.duration_s * 1000:>7.1f} ms"
        )
    summaries = []
    for tenant_id in MESSAGING_SIZES:
        store = runtime.store_opener()(platform.registry.get(tenant_id).store)
        sent, delivered, read, failed = (int(v) for v in store.query(tenant_id, TENANT_DAILY_SQL, [tenant_id])[1][0])
        summaries.append(
            MessagingSummary(
                tenant_id, batches.get(tenant_id, 0), landed.get(tenant_id, 0), sent, delivered, read, failed
            )
        )
    return summaries


@dataclass(frozen=True)
class DemoResult:
    summaries: list[TenantSummary]
    live: LiveStream
    messaging: list[MessagingSummary] = field(default_factory=list)


def run_demo(
    home: Path,
    *,
    tenants: list[TenantSpec] | None = None,
    seed: int = DEMO_SEED,
    say: Callable[[str], None] = print,
    keep_serving: Callable[[LocalPlatform, LocalApiGateway], None] | None = None,
) -> DemoResult:
    """Run the demo in a fresh ``home``; return the per-tenant summaries it printed and the live stream."""
    specs = tenants or default_tenants()
    shutil.rmtree(home, ignore_errors=True)
    t0 = time.monotonic()
    say(
        f"generating synthetic support data for {len(specs)} tenants (seed {seed}): tickets, ticket events, users, "
        "organizations, groups ..."
    )
    dataset = generate_support_data(seed, specs, DEMO_START, DEMO_END)
    with SourceServer(dataset, now=DEMO_FIRST_HOUR_SEES) as source, local_platform(home) as platform:
        say(
            f"source API on {source.base_url('<tenant>')}; embedded PostgreSQL, moto and local Spark up "
            f"({time.monotonic() - t0:.1f} s)"
        )
        largest = max(specs, key=lambda s: s.tickets).tenant_id
        for spec in specs:
            tier = Tier.REDSHIFT if spec.tenant_id == largest else None
            tenant = platform.add_tenant(spec.tenant_id, source.base_url(spec.tenant_id), tier=tier)
            say(f"  registered {tenant.tenant_id:<10} tier {tenant.tier.value:<8} store {tenant.store}")
        failed: list[dict[str, str]] = []
        statuses = []
        for run, clock in enumerate((DEMO_FIRST_HOUR_SEES, DEMO_END), start=1):
            source.set_now(clock)
            say(
                f"hour {run}: the source's clock reads {clock:%Y-%m-%d %H:%M}; running the pipeline "
                "(plan -> export -> Spark transform -> load -> refresh models -> publish) ..."
            )
            execution = platform.run_hour()
            statuses.append(execution["status"])
            output = execution.get("output") or {}
            batches = output.get("batches", [])
            failed = [f for b in batches for f in b.get("failed", [])]
            exported = sum(b.get("records_exported", 0) for b in batches)
            by_stream: dict[str, int] = {}
            for b in batches:
                for stream, n in b.get("records_by_stream", {}).items():
                    by_stream[stream] = by_stream.get(stream, 0) + n
            loaded = sorted({t for b in batches for t in b.get("loaded", [])})
            say(
                f"  {execution['status']} at {time.monotonic() - t0:.1f} s: {exported} changed records exported "
                f"({', '.join(f'{k} {v}' for k, v in sorted(by_stream.items()))}), "
                f"{len(loaded)} tenant(s) loaded, {len(failed)} failed"
            )
            for failure in failed:
                say(f"    {failure['tenant_id']}: {failure['step']}: {failure['error']}")
        gateway = LocalApiGateway()
        messaging = (
            messaging_streams(platform, seed, say) if {s.tenant_id for s in specs} >= set(MESSAGING_SIZES) else []
        )
        live = live_stream(home, [spec.tenant_id for spec in specs], say)
        summaries = summarize(platform, gateway)
        say("")
        say(
            f"{'tenant':<10} {'tier':<9} {'tickets loaded':>14}  {'busiest day':<11} {'created':>7}  "
            f"{'data_version':>12}  {'live: tickets created':>21}  {'messages sent':>13}"
        )
        for s in summaries:
            created, sent = (realtime_total(platform, gateway, s.tenant_id, m) for m in LIVE_METRICS)
            say(
                f"{s.tenant_id:<10} {s.tier:<9} {s.tickets_loaded:>14}  {s.busiest_day or '-':<11} "
                f"{s.busiest_day_created:>7}  {s.data_version:>12}  {created:>21}  {sent:>13}"
            )
            live.totals[s.tenant_id] = (created, sent)
        if messaging:
            say("")
            say(
                f"{'tenant':<10} {'events landed':>13} {'sent':>7} {'delivered':>10} {'read':>7} {'failed':>7}"
                "  (models.tenant_daily)"
            )
            for m in messaging:
                rate = f"{m.delivered / m.sent:.1%}" if m.sent else "-"
                say(
                    f"{m.tenant_id:<10} {m.events_landed:>13} {m.sent:>7} {m.delivered:>10} {m.read:>7}"
                    f" {m.failed:>7}  delivery {rate}"
                )
        say("")
        say("Query the local API yourself:")
        say(f"  export TENANT_ANALYTICS_HOME={home}")
        say("  .venv/bin/tenant-analytics serve --port 8080 &")
        say("  TOKEN=$(.venv/bin/tenant-analytics token --tenant acme)")
        say('  curl -s -X POST localhost:8080/v1/query -H "Authorization: Bearer $TOKEN" \\')
        say('    -H "Content-Type: application/json" \\')
        say(
            '    -d \'{"dataset":"tickets","measures":["tickets_created"],'
            '"time":{"dimension":"created_at","granularity":"day"}}\''
        )
        say('  curl -s -X POST localhost:8080/v1/query -H "Authorization: Bearer $TOKEN" \\')
        say('    -H "Content-Type: application/json" \\')
        say(
            '    -d \'{"dataset":"messages","measures":["messages_sent","delivery_rate"],'
            '"time":{"dimension":"sent_at","granularity":"day"}}\''
        )
        say('  curl -s "localhost:8080/v1/realtime?metric=tickets_created&last=15m" -H "Authorization: Bearer $TOKEN"')
        say("(or run `make demo` with the demo's own API kept up: .venv/bin/tenant-analytics demo --serve)")
        if keep_serving is not None:
            keep_serving(platform, gateway)
        if any(status != "SUCCEEDED" for status in statuses) or failed:
            raise RuntimeError("the demo's pipeline run did not load every tenant")
    return DemoResult(summaries=summaries, live=live, messaging=messaging)

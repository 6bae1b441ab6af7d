"""`make demo`: synthetic tenants served by a local source API, one hourly pipeline run through the real state
machine, and each tenant's numbers read back through the query API."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tenant_analytics.local.api import LocalApiGateway
from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.sources.server import SourceServer
from tenant_analytics.sources.synthetic import TenantSpec, default_tenants, generate_dataset
from tenant_analytics.tenants.models import Tier

DEMO_SEED = 42
DEMO_START = datetime(2026, 10, 1, tzinfo=UTC)
DEMO_END = datetime(2026, 11, 1, tzinfo=UTC)
DEMO_FIRST_HOUR_SEES = datetime(2026, 10, 31, tzinfo=UTC)  # the source's clock at the first run
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
    import json

    summaries = []
    for tenant in platform.registry.list():
        response = gateway.handle(
            "POST",
            "/v1/query",
            {"Authorization": f"Bearer {platform.token(tenant.tenant_id)}", "Content-Type": "application/json"},
            json.dumps(DAILY_QUERY),
        )
        if response.status != 200:
            raise RuntimeError(f"query for {tenant.tenant_id} failed: {response.status} {response.body}")
        answer = response.json()
        day, count = busiest(answer["rows"])
        summaries.append(
            TenantSummary(tenant.tenant_id, tenant.tier.value, tenant.size_rows, day, count, answer["data_version"])
        )
    return summaries


def run_demo(
    home: Path,
    *,
    tenants: list[TenantSpec] | None = None,
    seed: int = DEMO_SEED,
    say: Callable[[str], None] = print,
    keep_serving: Callable[[LocalPlatform, LocalApiGateway], None] | None = None,
) -> list[TenantSummary]:
    """Run the demo in a fresh ``home``; return the per-tenant summaries it printed."""
    specs = tenants or default_tenants()
    shutil.rmtree(home, ignore_errors=True)
    t0 = time.monotonic()
    say(f"generating synthetic support data for {len(specs)} tenants (seed {seed}) ...")
    dataset = generate_dataset(seed, specs, DEMO_START, DEMO_END)
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
                "(plan -> export -> Spark transform -> load -> publish) ..."
            )
            execution = platform.run_hour()
            statuses.append(execution["status"])
            output = execution.get("output") or {}
            batches = output.get("batches", [])
            failed = [f for b in batches for f in b.get("failed", [])]
            exported = sum(b.get("records_exported", 0) for b in batches)
            loaded = sorted({t for b in batches for t in b.get("loaded", [])})
            say(
                f"  {execution['status']} at {time.monotonic() - t0:.1f} s: {exported} changed records exported, "
                f"{len(loaded)} tenant(s) loaded, {len(failed)} failed"
            )
            for failure in failed:
                say(f"    {failure['tenant_id']}: {failure['step']}: {failure['error']}")
        gateway = LocalApiGateway()
        summaries = summarize(platform, gateway)
        say("")
        say(f"{'tenant':<10} {'tier':<9} {'tickets loaded':>14}  {'busiest day':<11} {'created':>7}  data_version")
        for s in summaries:
            say(
                f"{s.tenant_id:<10} {s.tier:<9} {s.tickets_loaded:>14}  {s.busiest_day or '-':<11} "
                f"{s.busiest_day_created:>7}  {s.data_version}"
            )
        say("")
        say("Query the local API yourself:")
        say("  .venv/bin/tenant-analytics serve --port 8080 &")
        say("  TOKEN=$(.venv/bin/tenant-analytics token --tenant acme)")
        say('  curl -s -X POST localhost:8080/v1/query -H "Authorization: Bearer $TOKEN" \\')
        say(
            '    -d \'{"dataset":"tickets","measures":["tickets_created"],'
            '"time":{"dimension":"created_at","granularity":"day"}}\''
        )
        say(f"(the demo's state is under {home}; run the CLI with TENANT_ANALYTICS_HOME={home} to use it)")
        if keep_serving is not None:
            keep_serving(platform, gateway)
        if any(status != "SUCCEEDED" for status in statuses) or failed:
            raise RuntimeError("the demo's pipeline run did not load every tenant")
    return summaries

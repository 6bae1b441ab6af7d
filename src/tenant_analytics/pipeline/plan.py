"""Plan step: validate the execution input and bin-pack the runnable (active or failed) tenants into batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import PlacementBudgets
from tenant_analytics.tenants.models import Tenant
from tenant_analytics.tenants.registry import RUNNABLE_STATUSES, TenantRegistry

from .models import Batch, PlanRequest, PlanResult

ALLOWED_INPUT = (
    '{} (the last complete hour, every active or failed tenant) or {"tenants": ["id", ...], "hour": "<ISO hour>"}'
)


def last_complete_hour(now: datetime) -> datetime:
    """Return the start of the last hour that has fully passed at ``now``."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def parse_hour(value: object, now: datetime) -> datetime:
    """Parse an ISO hour from the execution input; it must be on the hour and already complete."""
    if not isinstance(value, str):
        raise InvalidInput(f"'hour' must be an ISO-8601 string like 2026-01-31T13:00:00Z, got {value!r}", field="hour")
    try:
        hour = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"'hour' {value!r} is not ISO-8601 (example: 2026-01-31T13:00:00Z)", field="hour") from exc
    if hour.tzinfo is None:
        hour = hour.replace(tzinfo=UTC)
    hour = hour.astimezone(UTC)
    if hour.minute or hour.second or hour.microsecond:
        raise InvalidInput(f"'hour' {value!r} must be on the hour (minutes and seconds zero)", field="hour")
    if hour > last_complete_hour(now):
        raise InvalidInput(
            f"'hour' {value!r} has not completed yet; the latest allowed is {last_complete_hour(now).isoformat()}",
            field="hour",
        )
    return hour


def pack_batches(tenants: list[Tenant], budgets: PlacementBudgets) -> list[Batch]:
    """First-fit decreasing by size: small tenants share a Glue run, one above capacity runs alone, and a
    tenant past the large threshold runs alone on EMR Serverless."""
    large = sorted((t for t in tenants if t.size_rows >= budgets.emr_threshold_rows), key=lambda t: t.tenant_id)
    bins: list[list[Tenant]] = []
    loads: list[int] = []
    rest = [t for t in tenants if t.size_rows < budgets.emr_threshold_rows]
    for tenant in sorted(rest, key=lambda t: (-t.size_rows, t.tenant_id)):
        for i, load in enumerate(loads):
            if load + tenant.size_rows <= budgets.batch_capacity_rows:
                bins[i].append(tenant)
                loads[i] += tenant.size_rows
                break
        else:
            bins.append([tenant])
            loads.append(tenant.size_rows)
    batches = [
        Batch(batch_id=f"e{i:04d}", tenants=[t.tenant_id], engine="emr", rows=t.size_rows) for i, t in enumerate(large)
    ]
    batches += [
        Batch(batch_id=f"b{i:04d}", tenants=[t.tenant_id for t in members], engine="glue", rows=loads[i])
        for i, members in enumerate(bins)
    ]
    return batches


def select_tenants(wanted: object, registry: TenantRegistry) -> list[Tenant]:
    """Return the named tenants (each once); raise InvalidInput unless ``wanted`` is a non-empty list of ids of
    registered tenants that can run (active or failed), UnknownTenant for an id that is not registered."""
    if not isinstance(wanted, list) or not wanted or not all(isinstance(t, str) for t in wanted):
        raise InvalidInput(
            f"'tenants' must be a non-empty list of tenant ids, got {json.dumps(wanted)}", field="tenants"
        )
    selected = [registry.get(t) for t in dict.fromkeys(wanted)]
    inactive = [t.tenant_id for t in selected if t.status not in RUNNABLE_STATUSES]
    if inactive:
        raise InvalidInput(f"tenant(s) {inactive} are not active and cannot be run", field="tenants")
    return selected


def runnable_tenants(registry: TenantRegistry) -> list[Tenant]:
    """Return the tenants a run without a tenant list covers: every active or failed one."""
    return [t for t in registry.list() if t.status in RUNNABLE_STATUSES]


def plan_run(request: PlanRequest, registry: TenantRegistry, budgets: PlacementBudgets) -> PlanResult:
    """Validate the input and return the batches of this run. Raises InvalidInput naming the bad field."""
    data = request.input
    unknown = sorted(set(data) - {"tenants", "hour"})
    if unknown:
        raise InvalidInput(f"unknown input field(s) {unknown}; allowed input: {ALLOWED_INPUT}", field=unknown[0])
    now = request.execution_start
    hour = parse_hour(data["hour"], now) if "hour" in data else last_complete_hour(now)
    selected = select_tenants(data["tenants"], registry) if "tenants" in data else runnable_tenants(registry)
    return PlanResult(
        hour=hour,
        run_id=request.execution_name,
        max_concurrency=budgets.max_concurrency,
        poll_seconds=budgets.poll_seconds,
        batches=pack_batches(selected, budgets),
    )

"""Per-container copies of tenant records, so a cache hit does not wait for the registry.

The answer cache is keyed by the tenant's ``data_version``; reading that version from the registry on every
request would cost more than the hit itself. A container therefore keeps each tenant's record for at most
``max_age_ms`` and reads it again after that. The bound is the whole freshness trade-off: a request that
arrives ``max_age_ms`` or more after a publish always sees the new version, and a cache miss always reads
the registry (see QueryService), so stale data is never computed, only a recent hit can be served again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tenant_analytics.tenants.models import Tenant


@dataclass(frozen=True)
class TenantSnapshot:
    """A tenant record as read from the registry at ``read_at`` (monotonic seconds)."""

    tenant: Tenant
    read_at: float


@dataclass(frozen=True)
class VersionedTenant:
    """The record a request works with and how old it is."""

    tenant: Tenant
    age_ms: int
    read_now: bool  # read from the registry for this request


class TenantSnapshots:
    """A bounded, thread-safe map tenant id -> snapshot, each re-read once it is ``max_age_ms`` old."""

    def __init__(
        self,
        read: Callable[[str], Tenant],
        *,
        max_age_ms: int,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age_ms < 0 or capacity < 1:
            raise ValueError("max_age_ms must be >= 0 and capacity >= 1")
        self._read = read
        self._max_age = max_age_ms / 1000
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, TenantSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant_id: str) -> VersionedTenant:
        """The tenant's record: the kept copy while younger than the bound, else read now (UnknownTenant raises)."""
        now = self._clock()
        with self._lock:
            kept = self._entries.get(tenant_id)
            if kept is not None and now - kept.read_at < self._max_age:
                self._entries.move_to_end(tenant_id)
                return VersionedTenant(kept.tenant, _ms(now - kept.read_at), read_now=False)
        return self.refresh(tenant_id)

    def refresh(self, tenant_id: str) -> VersionedTenant:
        """Read the record from the registry now and keep it (UnknownTenant raises, and nothing is kept)."""
        # The time is taken before the read: the copy's age is never underestimated.
        started = self._clock()
        tenant = self._read(tenant_id)
        with self._lock:
            kept = self._entries.get(tenant_id)
            if kept is None or kept.read_at <= started:
                self._entries[tenant_id] = TenantSnapshot(tenant, started)
                self._entries.move_to_end(tenant_id)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return VersionedTenant(tenant, 0, read_now=True)


def _ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000 - 1e-6))  # rounded up: an age is never understated

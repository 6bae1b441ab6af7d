"""Query API: cache-hit latency in process, and 20 concurrent clients against the local HTTP server.

A tenant with 100,000 tickets on the embedded PostgreSQL; a dashboard of six queries. Cache hits are timed
through QueryService (in process, the LRU layer), spread over a few seconds so that the container's copy of
the tenant's data_version expires and is read from the registry again several times (DATA_VERSION_MAX_AGE_MS);
those re-reads are among the timed hits. The concurrent run goes through the local server, i.e. the real
authorizer (RS256 verification per request) and query Lambda handler, as API Gateway would call them.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

from tenant_analytics.local.api import LocalApiGateway, make_server
from tenant_analytics.local.platform import local_platform
from tenant_analytics.pipeline import runtime
from tenant_analytics.query import runtime as query_runtime
from tenant_analytics.query.contract import parse_query
from tenant_analytics.settings import get_settings
from tenant_analytics.stores.base import CuratedFiles
from tenant_analytics.transforms.tables import TICKETS as TICKETS_TABLE

TICKETS = 100_000
CLIENTS = 20
REQUESTS_PER_CLIENT = 50
HIT_ROUNDS = 300
HIT_ROUND_PAUSE_S = 0.01  # 300 rounds take over 3 s: the kept data_version expires (1 s by default) and is re-read
CHANNELS = ("email", "web", "chat", "api", "voice")
PRIORITIES = ("low", "normal", "high", "urgent")
DASHBOARD = [
    {"dataset": "tickets", "measures": ["tickets_created"], "time": {"dimension": "created_at", "granularity": "day"}},
    {"dataset": "tickets", "measures": ["tickets_created"], "dimensions": ["channel"]},
    {"dataset": "tickets", "measures": ["tickets_created"], "dimensions": ["priority", "status"]},
    {"dataset": "tickets", "measures": ["requesters"], "time": {"dimension": "created_at", "granularity": "month"}},
    {
        "dataset": "tickets",
        "measures": ["tickets_created"],
        "dimensions": ["channel"],
        "filters": [{"dimension": "priority", "op": "in", "values": ["high", "urgent"]}],
    },
    {"dataset": "tickets", "measures": ["tickets_created"], "time": {"dimension": "created_at", "granularity": "week"}},
]


def _rows() -> list[bytes]:
    """Curated ticket lines in the tickets table's column order (unset columns empty)."""
    out = []
    for i in range(1, TICKETS + 1):
        day = 1 + i % 28
        created = f"2026-{1 + i % 12:02d}-{day:02d}T{i % 24:02d}:00:00Z"
        values = {
            "ticket_id": i,
            "created_at": created,
            "updated_at": created,
            "status": "open",
            "priority": PRIORITIES[i % 4],
            "channel": CHANNELS[i % 5],
            "requester_id": i % 997,
        }
        out.append((",".join(str(values.get(c, "")) for c in TICKETS_TABLE.column_names) + "\n").encode())
    return out


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main() -> None:
    """Run the benchmark and print its figures."""
    home = Path(".local/bench-query")
    shutil.rmtree(home, ignore_errors=True)
    with local_platform(home, persist=False) as p:
        p.add_tenant("bench", "http://127.0.0.1:1/bench")
        store = runtime.store_opener()(p.registry.get("bench").store)
        stats = store.merge_curated("bench", {"tickets": CuratedFiles.from_bytes(_rows())})
        store.refresh_models(["bench"])
        p.registry.record_load("bench", size_rows=stats.size_rows, loaded_through=datetime.now(UTC))
        service = query_runtime.query_service()
        queries = [parse_query(q) for q in DASHBOARD]
        misses = []
        for q in queries:
            began = time.perf_counter()
            service.answer("bench", q)
            misses.append(time.perf_counter() - began)
        hits = []
        rereads = 0
        for _ in range(HIT_ROUNDS):
            for q in queries:
                began = time.perf_counter()
                answer = service.answer("bench", q)
                hits.append(time.perf_counter() - began)
                assert answer.cache == "hit"
                rereads += answer.freshness.data_version_age_ms == 0  # the version was read for this hit
            time.sleep(HIT_ROUND_PAUSE_S)
        server = make_server(LocalApiGateway(), 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
        token = p.token("bench")

        def client(n: int) -> list[float]:
            session = requests.Session()
            latencies = []
            for i in range(REQUESTS_PER_CLIENT):
                began = time.perf_counter()
                r = session.post(
                    url,
                    json=DASHBOARD[(n + i) % len(DASHBOARD)],
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                latencies.append(time.perf_counter() - began)
                assert r.status_code == 200, r.text
            return latencies

        began = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            api = [x for batch in pool.map(client, range(CLIENTS)) for x in batch]
        wall = time.perf_counter() - began
        server.shutdown()
        server.server_close()
    print(f"data: {TICKETS} tickets of one tenant, a dashboard of {len(DASHBOARD)} queries")
    print(f"machine: {platform.platform()}, cpus={os.cpu_count()}, python {platform.python_version()}")
    print(f"cache miss (PostgreSQL) ms: median {statistics.median(misses) * 1000:.1f}, max {max(misses) * 1000:.1f}")
    print(
        f"cache hit ms: median {statistics.median(hits) * 1000:.3f}, p99 {_p(hits, 99):.3f}, "
        f"max {max(hits) * 1000:.3f} ({len(hits)} hits, {rereads} of them re-read the data_version, "
        f"bound {get_settings().data_version_max_age_ms} ms)"
    )
    print(
        f"local API, {CLIENTS} concurrent clients x {REQUESTS_PER_CLIENT} requests: {len(api) / wall:.0f} req/s, "
        f"p50 {_p(api, 50):.1f} ms, p95 {_p(api, 95):.1f} ms (authorizer + handler per request, cache warm)"
    )
    print(f"BENCH cache_hit_p99_ms {_p(hits, 99):.3f} ms")
    print(f"BENCH api_concurrent_p95_ms {_p(api, 95):.1f} ms")


if __name__ == "__main__":
    main()

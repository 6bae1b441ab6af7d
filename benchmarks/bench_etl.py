"""Support-metrics ETL throughput in local Spark, and the gain of one multi-tenant job over per-tenant jobs.

Run: ``.venv/bin/python benchmarks/bench_etl.py [--events N]``. Inputs are synthetic ticket, event and user
records generated in Spark (``spark.range`` and arithmetic) and landed as JSON files, so every variant reads
real files with the raw schemas, runs ``normalize_tickets``, ``ticket_metrics`` and ``daily_ticket_counts``
and writes Parquet.

* ETL: all events of ``--tenants`` tenants in one job; figure: input events per second per core.
* Bin-packing: ``--binpack-tenants`` small tenants processed by one job with tenant_id as a column, versus
  one read/transform/write sequence per tenant (as a per-tenant pipeline runs them), in the same Spark
  session, so the ratio leaves out the session start-up a separate per-tenant job would also pay.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from tenant_analytics.local.spark import local_spark
from tenant_analytics.transforms.support import RAW_TICKET_SCHEMA, normalize_tickets
from tenant_analytics.transforms.support_metrics import (
    RAW_TICKET_EVENT_SCHEMA,
    RAW_USER_SCHEMA,
    daily_ticket_counts,
    ticket_metrics,
)

EVENTS_PER_TICKET = 10
AGENTS_PER_TENANT = 20
END_USERS_PER_TENANT = 500
WINDOW_SECONDS = 60 * 86400  # tickets are created over 60 days
START = "2026-01-01 00:00:00"
DUPLICATE_EVERY = 100  # one event in a hundred is delivered twice


@dataclass(frozen=True)
class Shape:
    """How much synthetic data: tenants x tickets per tenant, EVENTS_PER_TICKET events per ticket."""

    tenants: int
    tickets_per_tenant: int

    @property
    def events(self) -> int:
        return self.tenants * self.tickets_per_tenant * EVENTS_PER_TICKET


def _iso(seconds: Column) -> Column:
    return F.date_format(F.timestamp_seconds(seconds), "yyyy-MM-dd'T'HH:mm:ss'Z'")


def _tenant(index: Column) -> Column:
    return F.format_string("tenant-%03d", index)


def synthetic_raw(spark: SparkSession, shape: Shape) -> dict[str, DataFrame]:
    """Raw-shaped tickets, events (with duplicates) and users, each with a tenant_id column.

    Ticket g belongs to tenant g mod tenants. Its ten events: create (new), agent reply, new->open, requester
    comment, internal note, assignee change, open->pending, agent reply, pending->solved, and for every
    fourth ticket a reopen by the requester (else a priority change). Events are minutes to days apart.
    """
    start = F.unix_timestamp(F.lit(START))
    tickets_total = shape.tenants * shape.tickets_per_tenant
    g = F.col("id")
    created = start + F.pmod(g * 2654435761, F.lit(WINDOW_SECONDS))
    requester = 1000 + F.pmod(g * 7, F.lit(END_USERS_PER_TENANT))
    reopened = F.pmod(g, F.lit(4)) == 0
    tickets = spark.range(tickets_total).select(
        _tenant(F.pmod(g, F.lit(shape.tenants))).alias("tenant_id"),
        (F.floor(g / shape.tenants) + 1).alias("id"),
        _iso(created).alias("created_at"),
        _iso(created + 9 * 86400).alias("updated_at"),
        F.when(reopened, "open").otherwise("solved").alias("status"),
        F.element_at(
            F.array(*(F.lit(p) for p in ("low", "normal", "high", "urgent"))), (F.pmod(g, F.lit(4)) + 1).cast("int")
        ).alias("priority"),
        F.struct(F.lit("email").alias("channel")).alias("via"),
        requester.alias("requester_id"),
        (1 + F.pmod(g, F.lit(AGENTS_PER_TENANT))).alias("assignee_id"),
        (1 + F.pmod(g, F.lit(5))).alias("group_id"),
        (1 + F.pmod(g, F.lit(50))).alias("organization_id"),
    )

    r = F.col("id")
    t = F.floor(r / EVENTS_PER_TICKET)
    k = F.pmod(r, F.lit(EVENTS_PER_TICKET))
    t_created = start + F.pmod(t * 2654435761, F.lit(WINDOW_SECONDS))
    # k-th event at k gaps of 1 minute to 4 hours, stretched up to 5x for some tickets so they span days
    gap = (60 + F.pmod(t * 131 + 977, F.lit(14400))) * (1 + F.pmod(t, F.lit(5)))
    agent = 1 + F.pmod(t * 7 + k, F.lit(AGENTS_PER_TENANT))
    t_requester = 1000 + F.pmod(t * 7, F.lit(END_USERS_PER_TENANT))
    t_reopened = F.pmod(t, F.lit(4)) == 0

    def by_k(*values: object) -> Column:
        return F.element_at(F.array(*(v if isinstance(v, Column) else F.lit(v) for v in values)), k.cast("int") + 1)

    events = spark.range(shape.events).select(
        _tenant(F.pmod(t, F.lit(shape.tenants))).alias("tenant_id"),
        (r + 1).alias("id"),
        (F.floor(t / shape.tenants) + 1).alias("ticket_id"),
        _iso(t_created + k * gap).alias("created_at"),
        F.when((k == 9) & ~t_reopened, "priority_change")
        .otherwise(
            by_k(
                "create",
                "comment",
                "status_change",
                "comment",
                "comment",
                "assignee_change",
                "status_change",
                "comment",
                "status_change",
                "status_change",
            )
        )
        .alias("event_type"),
        F.when(k.isin(0, 3) | ((k == 9) & t_reopened), t_requester).otherwise(agent).alias("author_id"),
        F.when(k == 4, False).when(k.isin(1, 3, 7), True).alias("public"),
        F.when((k == 9) & ~t_reopened, "normal")
        .otherwise(by_k(None, None, "new", None, None, None, "open", None, "pending", "solved"))
        .alias("previous_value"),
        F.when((k == 9) & ~t_reopened, "high")
        .otherwise(by_k("new", None, "open", None, None, agent.cast("string"), "pending", None, "solved", "open"))
        .alias("value"),
    )
    events = events.unionByName(events.where(F.pmod(F.col("id"), F.lit(DUPLICATE_EVERY)) == 0))

    per_tenant = AGENTS_PER_TENANT + END_USERS_PER_TENANT
    u = F.pmod(F.col("id"), F.lit(per_tenant))
    is_agent = u < AGENTS_PER_TENANT
    user_id = F.when(is_agent, u + 1).otherwise(1000 + u - AGENTS_PER_TENANT)
    users = spark.range(shape.tenants * per_tenant).select(
        _tenant(F.floor(F.col("id") / per_tenant)).alias("tenant_id"),
        user_id.alias("id"),
        F.format_string("user %d", user_id).alias("name"),
        F.format_string("user%d@example.com", user_id).alias("email"),
        F.when(u == 0, "admin").when(is_agent, "agent").otherwise("end-user").alias("role"),
        F.lit(None).cast("long").alias("organization_id"),
        F.lit("2025-01-01T00:00:00Z").alias("created_at"),
        F.lit("2025-06-01T00:00:00Z").alias("updated_at"),
    )
    return {"tickets": tickets, "events": events, "users": users}


def land(raw: dict[str, DataFrame], root: Path) -> int:
    """Write each data set as one JSON file per tenant, root/<name>/tenant_id=<id>/; returns the event records."""
    for name, df in raw.items():
        df.repartition("tenant_id").write.mode("overwrite").partitionBy("tenant_id").json(str(root / name))
    return raw["events"].count()


def read_landed(spark: SparkSession, root: Path, tenant_id: str | None = None) -> dict[str, DataFrame]:
    """All tenants (tenant_id from the folder names) or one tenant's folders (tenant_id added as a literal)."""
    schemas = {"tickets": RAW_TICKET_SCHEMA, "events": RAW_TICKET_EVENT_SCHEMA, "users": RAW_USER_SCHEMA}
    if tenant_id is None:
        return {name: spark.read.schema(schema).json(str(root / name)) for name, schema in schemas.items()}
    return {
        name: spark.read.schema(schema)
        .json(str(root / name / f"tenant_id={tenant_id}"))
        .withColumn("tenant_id", F.lit(tenant_id))
        for name, schema in schemas.items()
    }


def run_pipeline(raw: dict[str, DataFrame], out: Path, partition_by_tenant: bool) -> None:
    """normalize_tickets, ticket_metrics and daily_ticket_counts, each result written as Parquet under out."""
    tickets = normalize_tickets(raw["tickets"])
    results = {
        "ticket_metrics": ticket_metrics(tickets, raw["events"], raw["users"]),
        "daily_ticket_counts": daily_ticket_counts(tickets, raw["events"]),
    }
    for name, df in results.items():
        if partition_by_tenant:
            # one file per tenant folder, as the per-tenant runs write
            df.repartition("tenant_id").write.mode("overwrite").partitionBy("tenant_id").parquet(str(out / name))
        else:
            df.write.mode("overwrite").parquet(str(out / name))


def timed(action: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def describe_machine(spark: SparkSession) -> int:
    """Print the machine and Spark set-up; returns the number of cores Spark runs tasks on."""
    cores = spark.sparkContext.defaultParallelism
    jvm = spark.sparkContext._jvm
    java = jvm.java.lang.System.getProperty("java.version") if jvm is not None else "unknown"
    print(f"machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}, spark {spark.version} ({spark.sparkContext.master}), java {java}")
    print(f"spark cores used: {cores}; load average before: {_load()}")
    return cores


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_500_000, help="ticket events of the ETL run")
    parser.add_argument("--tenants", type=int, default=20, help="tenants of the ETL run")
    parser.add_argument("--binpack-tenants", type=int, default=100)
    parser.add_argument("--binpack-events", type=int, default=2000, help="events per bin-packing tenant")
    # Called without arguments by `make bench` (python -m benchmarks), whose own arguments are not ours.
    return parser.parse_args(list(argv) if argv is not None else [])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spark = local_spark()
    cores = describe_machine(spark)
    etl_shape = Shape(args.tenants, max(1, args.events // (args.tenants * EVENTS_PER_TICKET)))
    pack_shape = Shape(args.binpack_tenants, max(1, args.binpack_events // EVENTS_PER_TICKET))
    tenant_ids = [f"tenant-{n:03d}" for n in range(pack_shape.tenants)]

    with tempfile.TemporaryDirectory(prefix="bench-etl-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        etl_records = land(synthetic_raw(spark, etl_shape), root / "etl" / "raw")
        pack_records = land(synthetic_raw(spark, pack_shape), root / "pack" / "raw")
        print(f"generated and landed as JSON in {time.perf_counter() - started:.1f} s")

        # Warm-up: the first run of a plan pays JIT and code generation, which neither variant should carry.
        run_pipeline(read_landed(spark, root / "pack" / "raw", tenant_ids[0]), root / "warm-up", False)

        etl_s = timed(lambda: run_pipeline(read_landed(spark, root / "etl" / "raw"), root / "etl" / "out", True))
        print(
            f"etl: {etl_records:,} event records ({etl_shape.events:,} distinct, {etl_shape.tenants} tenants, "
            f"{etl_shape.tenants * etl_shape.tickets_per_tenant:,} tickets) read, transformed and written "
            f"in {etl_s:.1f} s on {cores} cores"
        )

        one_job_s = timed(lambda: run_pipeline(read_landed(spark, root / "pack" / "raw"), root / "pack" / "one", True))

        def one_job_per_tenant() -> None:
            for tenant_id in tenant_ids:
                raw = read_landed(spark, root / "pack" / "raw", tenant_id)
                run_pipeline(raw, root / "pack" / "per" / tenant_id, False)

        per_tenant_s = timed(one_job_per_tenant)
        print(
            f"bin-packing: {pack_shape.tenants} tenants x {pack_shape.events // pack_shape.tenants:,} events "
            f"({pack_records:,} event records): one job {one_job_s:.1f} s, "
            f"{pack_shape.tenants} per-tenant jobs {per_tenant_s:.1f} s"
        )
    print(f"load average after: {_load()}")
    print(f"BENCH binpack_speedup {per_tenant_s / one_job_s:.1f} x")
    print(f"BENCH etl_events_per_s_per_core {etl_records / etl_s / cores:.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Spark job: a batch of tenants' landed support pages -> the curated support tables, CSV per table and tenant.

Runs unchanged on AWS Glue, EMR Serverless and local Spark. Arguments:
  --manifest  URI of the batch manifest (landed pages and history per tenant and stream)
  --output    URI prefix to write ``<table>/tenant_id=<id>/part-*.csv`` under (tables: transforms.tables)

The run reads each tenant's new pages and its curated history, appends the new pages to the history (Parquet,
``<history_root>/<stream>/tenant_id=<id>/batch=<id>/``; a history past the manifest's ``compact_after_files`` is
rewritten into one file instead) and writes:
  * tickets touched by this run (a new version, a new event, or a changed requester, assignee, group or
    organization), denormalized with names, and their metrics recomputed from their whole event history;
  * the new users, groups, organizations (latest version each) and ticket events;
  * the tenant's daily counts, recomputed from the whole history (the backlog carries across days).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from tenant_analytics.transforms.manifest import TransformManifest
from tenant_analytics.transforms.support import RAW_TICKET_SCHEMA, normalize_tickets
from tenant_analytics.transforms.support_metrics import (
    RAW_GROUP_SCHEMA,
    RAW_ORGANIZATION_SCHEMA,
    RAW_TICKET_EVENT_SCHEMA,
    RAW_USER_SCHEMA,
    curated_ticket_events,
    daily_ticket_counts,
    denormalize_tickets,
    latest_by_id,
    ticket_metrics,
)
from tenant_analytics.transforms.tables import (
    DAILY_TICKET_COUNTS,
    GROUPS,
    ORGANIZATIONS,
    TICKET_EVENTS,
    TICKET_METRICS,
    TICKETS,
    USERS,
    CuratedTable,
)

ARGUMENTS = ("manifest", "output")
STREAM_SCHEMAS: dict[str, StructType] = {
    "tickets": RAW_TICKET_SCHEMA,
    "users": RAW_USER_SCHEMA,
    "groups": RAW_GROUP_SCHEMA,
    "organizations": RAW_ORGANIZATION_SCHEMA,
    "ticket_events": RAW_TICKET_EVENT_SCHEMA,
}


@dataclass(frozen=True)
class TransformArgs:
    manifest: str
    output: str


@dataclass(frozen=True)
class Stream:
    """One source stream of the batch: this run's landed records, and those plus the history."""

    new: DataFrame
    all: DataFrame

    def cached(self) -> Stream:
        """The same records, kept by Spark once read: every curated table and the history reads them again."""
        return Stream(new=self.new.cache(), all=self.all.cache())

    def unpersist(self) -> None:
        self.new.unpersist()
        self.all.unpersist()


def parse_args(argv: list[str]) -> TransformArgs:
    """Read the job arguments with Glue's resolver when it is there, else argparse (EMR, local)."""
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        parser = argparse.ArgumentParser(description=__doc__)
        for name in ARGUMENTS:
            parser.add_argument(f"--{name}", required=True)
        known, _ = parser.parse_known_args(argv[1:])
        return TransformArgs(manifest=known.manifest, output=known.output)
    options = getResolvedOptions(argv, list(ARGUMENTS))
    return TransformArgs(manifest=options["manifest"], output=options["output"])


def build_session() -> SparkSession:
    """The Glue session when running on Glue, else the active (or a new) Spark session."""
    try:
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext
    except ImportError:
        spark = SparkSession.builder.appName("transform_support").getOrCreate()
    else:
        spark = GlueContext(SparkContext.getOrCreate()).spark_session
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # tenant ids are names, never numbers: keep partition values as strings
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    return spark


def _under(root: str, stream: str) -> str:
    return f"{root.rstrip('/')}/{stream}/"


def read_stream(spark: SparkSession, manifest: TransformManifest, stream: str) -> Stream:
    """The stream's new records (tenant_id from the folder) and, unioned with its history, all its records."""
    schema = STREAM_SCHEMAS[stream]
    columns = ["tenant_id", *schema.fieldNames()]
    empty = spark.createDataFrame([], StructType([StructField("tenant_id", StringType()), *schema.fields]))
    paths = manifest.paths(stream)
    new = (
        spark.read.schema(schema).option("basePath", _under(manifest.raw_root, stream)).json(paths).select(*columns)
        if paths
        else empty
    )
    history_paths = manifest.history_paths(stream)
    if history_paths and manifest.history_root:
        history = (
            spark.read.option("basePath", _under(manifest.history_root, stream))
            .parquet(*history_paths)
            .select(*columns)
        )
        return Stream(new=new, all=new.unionByName(history))
    return Stream(new=new, all=new)


def append_history(stream: str, new: DataFrame, manifest: TransformManifest) -> None:
    """Append this run's records of ``stream`` to each tenant's history (a re-run only adds duplicates), but for
    the tenants whose history the run compacts (``compact_history`` writes their new records)."""
    if manifest.history_root and manifest.paths(stream):
        compacting = list(manifest.compacting(stream))
        rows = new.where(~F.col("tenant_id").isin(*compacting)) if compacting else new
        (
            rows.withColumn("batch", F.lit(manifest.batch_id))
            .write.mode("append")
            .partitionBy("tenant_id", "batch")
            .parquet(_under(manifest.history_root, stream))
        )


def compact_history(spark: SparkSession, stream: str, records: DataFrame, manifest: TransformManifest) -> None:
    """Rewrite the history of ``stream`` of the tenants that ``manifest.compacting`` names: all their records
    (``records``: history and this run's), exact duplicates dropped, into one file per tenant under
    ``batch=compacted-<hour>-<batch>``, then delete the files that held them.

    The files are deleted only once the new one is written: a run that fails in between leaves duplicates, which
    every transform drops, never a gap.
    """
    compacting = manifest.compacting(stream)
    if not compacting or not manifest.history_root:
        return
    folder = "compacted-" + "".join(ch for ch in manifest.hour if ch.isdigit())[:12] + f"-{manifest.batch_id}"
    (
        records.where(F.col("tenant_id").isin(*compacting))
        .distinct()
        .withColumn("batch", F.lit(folder))
        .repartition("tenant_id")
        .write.mode("append")
        .partitionBy("tenant_id", "batch")
        .parquet(_under(manifest.history_root, stream))
    )
    delete_files(spark, [uri for files in compacting.values() for uri in files])


def delete_files(spark: SparkSession, uris: list[str]) -> None:
    """Delete files through Spark's own file system layer (S3 on Glue and EMR, local files in local mode)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has no JVM gateway to delete files with")
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for uri in uris:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        path.getFileSystem(conf).delete(path, False)


def touched_tickets(tickets: DataFrame, streams: dict[str, Stream]) -> DataFrame:
    """(tenant_id, ticket_id) of tickets with a new version or event, or referencing a changed user/group/org."""

    def referencing(stream: str, column: str) -> DataFrame:
        ids = streams[stream].new.select("tenant_id", F.col("id").alias(column)).distinct()
        return tickets.join(ids, ["tenant_id", column], "left_semi").select("tenant_id", "ticket_id")

    parts = [
        streams["tickets"].new.select("tenant_id", F.col("id").alias("ticket_id")),
        streams["ticket_events"].new.select("tenant_id", "ticket_id"),
        referencing("users", "requester_id"),
        referencing("users", "assignee_id"),
        referencing("groups", "group_id"),
        referencing("organizations", "organization_id"),
    ]
    return reduce(DataFrame.unionByName, parts).where(F.col("ticket_id").isNotNull()).distinct()


def curated_tables(streams: dict[str, Stream], landed: set[str]) -> dict[CuratedTable, DataFrame]:
    """The curated tables of the batch, as ``tenant_id`` plus the table's columns.

    ``landed`` names the streams with new pages in this run; a reference table whose stream landed nothing has
    nothing to write and is left out (tickets, their metrics and the daily counts are always written).
    """
    tickets = normalize_tickets(streams["tickets"].all).cache()
    current = tickets.join(touched_tickets(tickets, streams), ["tenant_id", "ticket_id"], "left_semi")
    users, groups, orgs = (streams[s].all for s in ("users", "groups", "organizations"))
    events = streams["ticket_events"].all
    tables = {
        USERS: latest_by_id(
            streams["users"].new,
            {
                "user_id": F.col("id"),
                "name": F.col("name"),
                "role": F.lower("role"),
                "organization_id": F.col("organization_id"),
                "created_at": F.col("created_at"),
                "updated_at": F.col("updated_at"),
            },
            timestamps=("created_at", "updated_at"),
        ),
        GROUPS: latest_by_id(streams["groups"].new, {"group_id": F.col("id"), "name": F.col("name")}),
        ORGANIZATIONS: latest_by_id(
            streams["organizations"].new,
            {
                "organization_id": F.col("id"),
                "name": F.col("name"),
                "created_at": F.col("created_at"),
                "updated_at": F.col("updated_at"),
            },
            timestamps=("created_at", "updated_at"),
        ),
        TICKETS: denormalize_tickets(current, users, groups, orgs),
        TICKET_EVENTS: curated_ticket_events(streams["ticket_events"].new),
        TICKET_METRICS: ticket_metrics(current, events, users),
        DAILY_TICKET_COUNTS: daily_ticket_counts(tickets, events),
    }
    from_stream = {USERS: "users", GROUPS: "groups", ORGANIZATIONS: "organizations", TICKET_EVENTS: "ticket_events"}
    return {t: rows for t, rows in tables.items() if t not in from_stream or from_stream[t] in landed}


def write_table(table: CuratedTable, rows: DataFrame, output: str) -> None:
    (
        rows.select("tenant_id", *table.column_names)
        .write.mode("overwrite")
        .partitionBy("tenant_id")
        .option("header", "false")
        .option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ssXXX")
        .csv(_under(output, table.name))
    )


def run(spark: SparkSession, args: TransformArgs) -> int:
    """Transform the batch; return the number of ticket rows written."""
    manifest = TransformManifest.from_json(spark.sparkContext.wholeTextFiles(args.manifest).first()[1])
    streams = {name: read_stream(spark, manifest, name).cached() for name in STREAM_SCHEMAS}
    tables = curated_tables(streams, {name for name in STREAM_SCHEMAS if manifest.paths(name)})
    tables[TICKETS] = tables[TICKETS].cache()
    for table, rows in tables.items():
        write_table(table, rows, args.output)
    written = tables[TICKETS].count()
    tables[TICKETS].unpersist()
    # history last: a run that fails before this point leaves the history as it was
    for name, stream in streams.items():
        append_history(name, stream.new, manifest)
        compact_history(spark, name, stream.all, manifest)
        stream.unpersist()
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv if argv is None else argv)
    rows = run(build_session(), args)
    print(f"transform_support: wrote {rows} ticket rows to {args.output}")
    return rows


if __name__ == "__main__":
    main()

"""Support-domain transforms: pure DataFrame -> DataFrame functions, run by Glue, EMR and local Spark alike."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from tenant_analytics.transforms.columns import TICKET_FACT_COLUMNS

# The fields the platform uses; any other field of the source is ignored by reading with this schema.
RAW_TICKET_SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("created_at", StringType()),
        StructField("updated_at", StringType()),
        StructField("status", StringType()),
        StructField("priority", StringType()),
        StructField("via", StructType([StructField("channel", StringType())])),
        StructField("requester_id", LongType()),
        StructField("assignee_id", LongType()),
        StructField("group_id", LongType()),
        StructField("organization_id", LongType()),
    ]
)


def iso_timestamp(column: str | Column) -> Column:
    """An ISO-8601 string as a timestamp (null if it is none), in every spelling the sources' validation accepts:
    ``Z`` or an offset (``+02:00``, ``-0530``), with or without fractions of a second. Spark's cast reads ISO-8601
    itself; a ``to_timestamp`` pattern reads one spelling and fails the whole job on the others."""
    return (F.col(column) if isinstance(column, str) else column).cast("timestamp")


def normalize_tickets(raw: DataFrame) -> DataFrame:
    """Flatten landed ticket versions into one current row per (tenant_id, ticket_id).

    ``raw`` has the RAW_TICKET_SCHEMA columns plus ``tenant_id``. Records without an id or a parseable
    ``updated_at`` are dropped; of several versions of a ticket the latest ``updated_at`` wins.
    Returns ``tenant_id`` followed by TICKET_FACT_COLUMNS, timestamps in UTC.
    """
    typed = raw.select(
        F.col("tenant_id").cast("string").alias("tenant_id"),
        F.col("id").alias("ticket_id"),
        iso_timestamp("created_at").alias("created_at"),
        iso_timestamp("updated_at").alias("updated_at"),
        F.lower("status").alias("status"),
        F.lower("priority").alias("priority"),
        F.lower(F.col("via.channel")).alias("channel"),
        "requester_id",
        "assignee_id",
        "group_id",
        "organization_id",
    ).where(F.col("ticket_id").isNotNull() & F.col("updated_at").isNotNull() & F.col("created_at").isNotNull())
    latest_first = Window.partitionBy("tenant_id", "ticket_id").orderBy(F.col("updated_at").desc())
    return (
        typed.withColumn("_rank", F.row_number().over(latest_first))
        .where(F.col("_rank") == 1)
        .select("tenant_id", *TICKET_FACT_COLUMNS)
    )


def daily_created(tickets: DataFrame) -> DataFrame:
    """Tickets created per tenant and UTC day: (tenant_id, day, tickets_created)."""
    return tickets.groupBy("tenant_id", F.to_date("created_at").alias("day")).agg(
        F.count(F.lit(1)).alias("tickets_created")
    )

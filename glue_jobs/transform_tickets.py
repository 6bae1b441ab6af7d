"""Spark job: landed ticket pages of a batch of tenants -> one current row per ticket, CSV per tenant.

Runs unchanged on AWS Glue, EMR Serverless and local Spark. Arguments:
  --manifest  URI of the batch manifest (which landed files belong to which tenant)
  --output    URI prefix to write ``tenant_id=<id>/part-*.csv`` under
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from pyspark.sql import SparkSession

from tenant_analytics.transforms.columns import TICKET_FACT_COLUMNS
from tenant_analytics.transforms.manifest import TransformManifest
from tenant_analytics.transforms.support import RAW_TICKET_SCHEMA, normalize_tickets

ARGUMENTS = ("manifest", "output")


@dataclass(frozen=True)
class TransformArgs:
    manifest: str
    output: str


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
        spark = SparkSession.builder.appName("transform_tickets").getOrCreate()
    else:
        spark = GlueContext(SparkContext.getOrCreate()).spark_session
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # tenant ids are names, never numbers: keep partition values as strings
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    return spark


def run(spark: SparkSession, args: TransformArgs) -> int:
    """Transform the batch; return the number of ticket rows written."""
    manifest_text = spark.sparkContext.wholeTextFiles(args.manifest).first()[1]
    manifest = TransformManifest.from_json(manifest_text)
    raw = spark.read.schema(RAW_TICKET_SCHEMA).option("basePath", manifest.raw_root).json(manifest.paths)
    tickets = normalize_tickets(raw).cache()
    (
        tickets.select("tenant_id", *TICKET_FACT_COLUMNS)
        .write.mode("overwrite")
        .partitionBy("tenant_id")
        .option("header", "false")
        .option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ssXXX")
        .csv(args.output)
    )
    written = tickets.count()
    tickets.unpersist()
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv if argv is None else argv)
    rows = run(build_session(), args)
    print(f"transform_tickets: wrote {rows} ticket rows to {args.output}")
    return rows


if __name__ == "__main__":
    main()

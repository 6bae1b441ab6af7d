"""Change-stream aggregation: Maxwell/Debezium parsing, KPL de-aggregation, exactly-once 10-second bins."""

from __future__ import annotations

from tenant_analytics.cdc.aggregator import AggregatorOptions, aggregate_batch, bin_start
from tenant_analytics.cdc.config import CdcConfig, load_config, parse_config
from tenant_analytics.cdc.events import KinesisBatch, batch_from_event
from tenant_analytics.cdc.formats import MalformedChange, parse_debezium, parse_document, parse_maxwell
from tenant_analytics.cdc.model import (
    BatchOutcome,
    BinRow,
    Change,
    Ignored,
    Increment,
    Op,
    RejectCode,
    Rejection,
    SourceFormat,
    StreamRecord,
)
from tenant_analytics.cdc.replay import ReplaySummary, replay_file
from tenant_analytics.cdc.sink import FailureSink, MemoryFailureSink, SqsFailureSink
from tenant_analytics.cdc.store import RealtimeStore, read_bins

__all__ = [
    "AggregatorOptions",
    "BatchOutcome",
    "BinRow",
    "CdcConfig",
    "Change",
    "FailureSink",
    "Ignored",
    "Increment",
    "KinesisBatch",
    "MalformedChange",
    "MemoryFailureSink",
    "Op",
    "RealtimeStore",
    "RejectCode",
    "Rejection",
    "ReplaySummary",
    "SourceFormat",
    "SqsFailureSink",
    "StreamRecord",
    "aggregate_batch",
    "batch_from_event",
    "bin_start",
    "load_config",
    "parse_config",
    "parse_debezium",
    "parse_document",
    "parse_maxwell",
    "read_bins",
    "replay_file",
]

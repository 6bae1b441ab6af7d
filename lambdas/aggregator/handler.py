"""Aggregator: Kinesis change records into 10-second bins, exactly once, with partial batch failures."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.cdc import runtime
from tenant_analytics.cdc.model import BatchOutcome
from tenant_analytics.constants import METRICS_NAMESPACE

logger = Logger(service="aggregator")
tracer = Tracer(service="aggregator")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="aggregator")
# Every record may be reported (database down): return the failures instead of raising, Lambda retries them.
processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)


def _record_handler(outcome: BatchOutcome, record: KinesisStreamRecord) -> None:
    outcome.check_record(record.kinesis.sequence_number)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    outcome = runtime.aggregate_event(event)
    for name, value in (
        ("CdcChangesCounted", outcome.counted),
        ("CdcDuplicates", outcome.duplicates),
        ("CdcLateChanges", outcome.late),
        ("CdcRejectedRecords", len(outcome.rejected)),
        ("CdcIgnoredChanges", sum(outcome.ignored.values())),
        ("CdcFailedRecords", len(outcome.failed_sequence_numbers)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info(
        "aggregated batch",
        extra={
            "shard_id": outcome.shard_id,
            "records": outcome.records,
            "counted": outcome.counted,
            "late": outcome.late,
            "rejected": len(outcome.rejected),
            "failed": len(outcome.failed_sequence_numbers),
            "failure_reason": outcome.failure_reason,
            "checkpoint": outcome.checkpoint,
        },
    )
    return process_partial_response(
        event=event, record_handler=partial(_record_handler, outcome), processor=processor, context=context
    )

"""The Kinesis event Lambda delivers to the aggregator, validated at the boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tenant_analytics.cdc.model import StreamRecord
from tenant_analytics.errors import InvalidInput


class KinesisData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sequence_number: str = Field(alias="sequenceNumber", pattern=r"^[0-9]{1,128}$")
    data: str
    partition_key: str = Field(default="", alias="partitionKey")


class KinesisEventRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(alias="eventID")
    event_source_arn: str = Field(default="", alias="eventSourceARN")
    kinesis: KinesisData


class KinesisEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    records: list[KinesisEventRecord] = Field(alias="Records")


@dataclass(frozen=True)
class KinesisBatch:
    """One invocation's records: all from one shard of one stream."""

    stream: str
    shard_id: str
    records: list[StreamRecord]


def batch_from_event(event: dict[str, Any]) -> KinesisBatch:
    """Validate a Lambda Kinesis event; return its stream ARN, shard id (from ``eventID``) and records."""
    parsed = KinesisEvent.model_validate(event)
    if not parsed.records:
        return KinesisBatch(stream="", shard_id="", records=[])
    first = parsed.records[0]
    shard_id = first.event_id.split(":", 1)[0]
    if any(r.event_id.split(":", 1)[0] != shard_id for r in parsed.records):
        raise InvalidInput("a Kinesis batch mixes records of several shards", field="Records")
    records = [
        StreamRecord(
            sequence_number=r.kinesis.sequence_number, data=r.kinesis.data, partition_key=r.kinesis.partition_key
        )
        for r in parsed.records
    ]
    return KinesisBatch(stream=first.event_source_arn, shard_id=shard_id, records=records)

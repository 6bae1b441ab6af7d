"""The change model shared by both CDC formats, and the records and outcomes around it.

These are hot-path types (tens of thousands per second), so they are frozen slotted dataclasses; pydantic
validates the boundaries that are not per-record hot (the Lambda event envelope, the metric configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

BIN_SECONDS = 10


class Op(StrEnum):
    """What happened to the source row."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class SourceFormat(StrEnum):
    """The wire formats of change records on the stream; ``auto`` recognises either by its fields."""

    AUTO = "auto"
    MAXWELL = "maxwell"
    DEBEZIUM = "debezium"


class RejectCode(StrEnum):
    """Why a record cannot ever be processed (it goes to the failure queue, never retried)."""

    BAD_BASE64 = "bad_base64"
    BAD_KPL = "bad_kpl"
    OVERSIZED = "oversized"
    BAD_JSON = "bad_json"
    UNKNOWN_FORMAT = "unknown_format"
    MISSING_FIELD = "missing_field"
    BAD_TIMESTAMP = "bad_timestamp"
    MISSING_TENANT = "missing_tenant"
    INVALID_TENANT = "invalid_tenant"
    MISSING_PRIMARY_KEY = "missing_primary_key"
    FUTURE_CHANGE = "future_change"
    UNKNOWN_TENANT = "unknown_tenant"
    UNSTORABLE_VALUE = "unstorable_value"


@dataclass(frozen=True, slots=True)
class Change:
    """One row change of a source table, whatever format carried it.

    ``before`` is the row before the change when the format carries it (Maxwell: ``data`` overlaid with ``old``;
    Debezium: ``before``), ``changed`` the columns known to have changed (None when unknown), ``source_identity``
    a string that is equal for the same change published twice (see formats.py for how each format builds it),
    and ``snapshot`` marks bootstrap/snapshot rows (existing state, not new events).
    """

    source_table: str
    op: Op
    tenant_id: str
    after: Mapping[str, Any] | None
    before: Mapping[str, Any] | None
    changed: frozenset[str] | None
    committed_at: datetime
    source_identity: str
    source_database: str = ""
    snapshot: bool = False

    @property
    def row(self) -> Mapping[str, Any]:
        """The row as it is after the change (the deleted row for a delete)."""
        return self.after if self.after is not None else (self.before or {})


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed record that feeds nothing (unknown table, control event, tombstone, snapshot row)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record as Lambda delivers it: base64 data, its shard sequence number, its partition key."""

    sequence_number: str
    data: str
    partition_key: str = ""

    @property
    def sequence(self) -> int:
        """The sequence number as an integer (they are decimal strings of up to 128 bits: compare numerically)."""
        return int(self.sequence_number)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that can never be processed, with the reason; sent to the failure queue."""

    sequence_number: str
    sub_sequence_number: int | None
    code: RejectCode
    reason: str
    data_preview: str = ""
    data_size: int = 0

    def to_message(self, *, stream: str, shard_id: str) -> dict[str, Any]:
        """Return the JSON body sent to the failure queue."""
        return {
            "stream": stream,
            "shard_id": shard_id,
            "sequence_number": self.sequence_number,
            "sub_sequence_number": self.sub_sequence_number,
            "code": self.code.value,
            "reason": self.reason,
            "data_size": self.data_size,
            "data_preview_b64": self.data_preview,
        }


@dataclass(frozen=True, slots=True)
class Increment:
    """One +1 to a bin: which tenant, metric and dimension values, and the start of the 10-second bin."""

    tenant_id: str
    metric: str
    dimensions: tuple[tuple[str, str | None], ...]
    bin_start: datetime


@dataclass(frozen=True, slots=True)
class BinRow:
    """One 10-second bin read back for the realtime API (``dimension_value`` set when split by a dimension)."""

    bin_start: datetime
    n: int
    dimension_value: str | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch did. ``failed_sequence_numbers`` are the records to report as batch item failures."""

    stream: str
    shard_id: str
    records: int = 0
    changes: int = 0
    skipped_at_checkpoint: int = 0
    counted: int = 0
    increments: int = 0
    duplicates: int = 0
    late: int = 0
    ignored: Mapping[str, int] = field(default_factory=dict)
    rejected: tuple[Rejection, ...] = ()
    failed_sequence_numbers: tuple[str, ...] = ()
    failure_reason: str | None = None
    checkpoint: str | None = None

    def check_record(self, sequence_number: str) -> None:
        """Raise if this record must be redelivered (the batch processor turns that into a batch item failure)."""
        if sequence_number in self._failed:
            raise TransientRecordFailure(sequence_number, self.failure_reason or "transient failure")

    @cached_property
    def _failed(self) -> frozenset[str]:
        return frozenset(self.failed_sequence_numbers)


class TransientRecordFailure(Exception):
    """A record whose effects were not committed; Lambda redelivers it from the lowest failed sequence number."""

    def __init__(self, sequence_number: str, reason: str) -> None:
        super().__init__(f"record {sequence_number} not processed: {reason}")
        self.sequence_number = sequence_number

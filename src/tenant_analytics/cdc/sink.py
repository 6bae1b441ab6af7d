"""Where rejected records go: the aggregator's on-failure SQS queue (or an in-memory list locally and in tests).

Delivery to the queue is at least once: a record rejected in a batch whose database commit then fails is sent
again when the batch is redelivered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from tenant_analytics.cdc.model import Rejection

_SQS_BATCH = 10  # SendMessageBatch limit


class FailureSink(Protocol):
    """Receives rejected records in sequence order; returns how many of them (a prefix) were delivered."""

    def send(self, rejections: Sequence[Rejection], *, stream: str, shard_id: str) -> int: ...


class MemoryFailureSink:
    """Keeps rejected records in a list (local replay, tests)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, rejections: Sequence[Rejection], *, stream: str, shard_id: str) -> int:
        self.messages.extend(r.to_message(stream=stream, shard_id=shard_id) for r in rejections)
        return len(rejections)


class SqsFailureSink:
    """Sends each rejected record, with its reason, as one message to an SQS queue.

    The client is created lazily (``tenant_analytics.aws.clients.client("sqs")``) unless one is passed in.
    """

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def _sqs(self) -> Any:
        if self._client is None:
            from tenant_analytics.aws import clients

            self._client = clients.client("sqs")
        return self._client

    def send(self, rejections: Sequence[Rejection], *, stream: str, shard_id: str) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        sent = 0
        for start in range(0, len(rejections), _SQS_BATCH):
            chunk = rejections[start : start + _SQS_BATCH]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(r.to_message(stream=stream, shard_id=shard_id)),
                    "MessageAttributes": {"code": {"DataType": "String", "StringValue": r.code.value}},
                }
                for i, r in enumerate(chunk)
            ]
            try:
                response = self._sqs().send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError):
                return sent
            failed = {int(f["Id"]) for f in response.get("Failed", [])}
            for i in range(len(chunk)):
                if i in failed:
                    return sent
                sent += 1
        return sent

"""SQS queues: KMS-encrypted, TLS-only, each failure queue backed by a dead-letter queue of its own."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

_RETENTION = Duration.days(14)


class FailureQueue(Construct):
    """A queue for failed work (``queue``) and the dead-letter queue it redrives to (``dead_letters``)."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, max_receive_count: int = 5) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=max_receive_count),
        )

"""Monitoring stack: alarms wired to an encrypted SNS topic, and the operations dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .config import PlatformConfig
from .constructs.alarms import AlarmTopic, PlatformAlarms, PlatformDashboard


class MonitoringStack(Stack):
    """Watches what the other stacks built; knows them only through constructor arguments."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        aggregator: lambda_.IFunction,
        functions: Mapping[str, lambda_.IFunction],
        failure_queues: Mapping[str, sqs.IQueue],
        state_machine: sfn.IStateMachine,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.topic = AlarmTopic(self, "AlarmTopic")
        self.alarms = PlatformAlarms(
            self,
            "Alarms",
            topic=self.topic.topic,
            aggregator=aggregator,
            functions=functions,
            failure_queues=failure_queues,
            state_machine=state_machine,
            freshness_threshold_seconds=config.freshness_alarm_seconds,
        )
        self.dashboard = PlatformDashboard(self, "Dashboard", alarms=self.alarms)
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic.topic_arn, description="Subscribe on-call here")

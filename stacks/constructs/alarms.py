"""Operational alarms, the encrypted topic they notify, and the platform dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from tenant_analytics import constants as c

_GREATER_OR_EQUAL = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
_GREATER = cw.ComparisonOperator.GREATER_THAN_THRESHOLD


class AlarmTopic(Construct):
    """SNS topic on a key CloudWatch alarms may use; TLS-only publishing."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "Key", alias=f"alias/{c.PROJECT}/alarms", description="Alarm notifications", enable_key_rotation=True
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                # only for this account's alarms (no other account's alarm can have CloudWatch use the key)
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(self, "Topic", topic_name=f"{c.PROJECT}-alarms", master_key=self.key, enforce_ssl=True)


class PlatformAlarms(Construct):
    """Alarms on the stream consumer, failure queues, pipeline, functions and data freshness."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        aggregator: lambda_.IFunction,
        functions: Mapping[str, lambda_.IFunction],
        failure_queues: Mapping[str, sqs.IQueue],
        state_machine: sfn.IStateMachine,
        freshness_threshold_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._action = actions.SnsAction(topic)
        self.alarms: list[cw.Alarm] = []
        self.iterator_age = aggregator.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(1))
        self._alarm(
            "AggregatorIteratorAge",
            self.iterator_age,
            threshold=60_000,
            evaluation_periods=5,
            description="The aggregator is more than a minute behind the change stream",
        )
        self.queue_depths = {
            name: queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=Duration.minutes(5))
            for name, queue in failure_queues.items()
        }
        for name, metric in self.queue_depths.items():
            self._alarm(f"{name}Depth", metric, threshold=1, description=f"Messages waiting in {name}")
        self.failed_executions = state_machine.metric_failed(statistic="Sum", period=Duration.minutes(5))
        self._alarm("PipelineFailedExecutions", self.failed_executions, threshold=1, description="Hourly run failed")
        self.function_errors = {
            name: function.metric_errors(statistic="Sum", period=Duration.minutes(5))
            for name, function in functions.items()
        }
        for name, metric in self.function_errors.items():
            self._alarm(f"{name.capitalize()}Errors", metric, threshold=1, description=f"{name} function errors")
        # The publish step reports once per batch per hourly run, under its Powertools service dimension.
        self.freshness = cw.Metric(
            namespace=c.METRICS_NAMESPACE,
            metric_name=c.FRESHNESS_METRIC,
            dimensions_map={"service": c.PIPELINE_SERVICE},
            statistic="Maximum",
            period=Duration.hours(1),
        )
        self.failed_tenants = cw.Metric(
            namespace=c.METRICS_NAMESPACE,
            metric_name=c.FAILED_TENANTS_METRIC,
            dimensions_map={"service": c.PIPELINE_SERVICE},
            statistic="Sum",
            period=Duration.hours(1),
        )
        self._alarm(
            "PipelineFailedTenants",
            self.failed_tenants,
            threshold=1,
            description="At least one tenant failed in the hourly run (see the execution output and tenants list)",
        )
        self._alarm(
            "FreshnessLag",
            self.freshness,
            threshold=freshness_threshold_seconds,
            comparison=_GREATER,
            evaluation_periods=2,
            # Publish reports only when a run loaded tenants: a platform with none has no lag to report. A pipeline
            # that stopped running is PipelineNotStarted's to report, one that fails the failure alarms'.
            missing=cw.TreatMissingData.NOT_BREACHING,
            description="Tenant data is older than the freshness objective",
        )
        # The schedule starts a run every hour, tenants or not.
        self.executions_started = state_machine.metric_started(statistic="Sum", period=Duration.hours(1))
        self._absence_alarm(
            "PipelineNotStarted",
            self.executions_started,
            periods=2,
            description="No hourly run has started for two hours (schedule or start function)",
        )
        # The refresh function reports each run, scheduled or after a load, under the pipeline service.
        self.models_refreshed = cw.Metric(
            namespace=c.METRICS_NAMESPACE,
            metric_name=c.MODELS_REFRESHED_METRIC,
            dimensions_map={"service": c.PIPELINE_SERVICE},
            statistic="Sum",
            period=Duration.minutes(c.MODEL_REFRESH_MINUTES),
        )
        self.model_refresh_failures = cw.Metric(
            namespace=c.METRICS_NAMESPACE,
            metric_name=c.MODEL_REFRESH_FAILURES_METRIC,
            dimensions_map={"service": c.PIPELINE_SERVICE},
            statistic="Sum",
            period=Duration.minutes(c.MODEL_REFRESH_MINUTES),
        )
        # Three periods without a refresh: models are past their freshness target (15 minutes).
        self._absence_alarm(
            "ModelsStale",
            self.models_refreshed,
            periods=3,
            description="No model refresh has completed for three refresh periods",
        )
        self._alarm(
            "ModelRefreshFailures",
            self.model_refresh_failures,
            threshold=1,
            description="A store's model refresh failed (see the refresh function's log)",
        )

    def _absence_alarm(self, construct_id: str, metric: cw.IMetric, *, periods: int, description: str) -> None:
        """An alarm when ``metric`` (a count) stays below 1 for ``periods`` periods; no data counts as none."""
        self._alarm(
            construct_id,
            metric,
            threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=periods,
            missing=cw.TreatMissingData.BREACHING,
            description=description,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        comparison: cw.ComparisonOperator = _GREATER_OR_EQUAL,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cw.Alarm(
            self,
            construct_id,
            alarm_name=f"{c.PROJECT}-{construct_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)


class PlatformDashboard(Construct):
    """One dashboard: stream lag, queues, pipeline, function errors, freshness, alarm states."""

    def __init__(self, scope: Construct, construct_id: str, *, alarms: PlatformAlarms) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{c.PROJECT}-operations")
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Aggregator iterator age (ms)", left=[alarms.iterator_age], width=12),
            cw.GraphWidget(title="Data freshness lag (s)", left=[alarms.freshness], width=12),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Pipeline executions (started, failed)",
                left=[alarms.executions_started, alarms.failed_executions],
                width=8,
            ),
            cw.GraphWidget(title="Failure queue depth", left=list(alarms.queue_depths.values()), width=8),
            cw.GraphWidget(title="Function errors", left=list(alarms.function_errors.values()), width=8),
        )
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=list(alarms.alarms), width=24))

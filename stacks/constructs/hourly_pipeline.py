"""The hourly pipeline's state machine (from its ASL file) and the schedule that starts it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from tenant_analytics import constants as c

from ..config import REPO_ROOT
from .logs import encrypted_log_group
from .nag import ANY_RESOURCE, acknowledge, resource_finding
from .queues import FailureQueue
from .spark import SparkCode, SparkServerlessApplication

ASL_PATH: Path = REPO_ROOT / "state_machines" / c.ASL_HOURLY
HOURLY_CRON = "cron(5 * * * ? *)"


class HourlyPipeline(Construct):
    """STANDARD state machine, logging ALL to an encrypted group, traced; may invoke only its six functions,
    start/poll only the transform job and job runs of the Spark application, and pass only its job role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        transform_job_name: str,
        spark: SparkServerlessApplication,
        code: SparkCode,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = encrypted_log_group(
            self, "ExecutionLogs", key=logs_key, name=f"/aws/vendedlogs/states/{c.HOURLY_STATE_MACHINE}"
        )
        # Executions carry tenants' batch state: encrypted with a key of the platform's, not an AWS-owned one. A key
        # of this stack's own, so that its policy can name the state machine without a reference between stacks.
        self.execution_key = kms.Key(
            self,
            "ExecutionKey",
            alias=f"alias/{c.PROJECT}/hourly-executions",
            description="Execution data of the hourly state machine",
            enable_key_rotation=True,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(
                self.execution_key, Duration.minutes(5)
            ),
            state_machine_name=c.HOURLY_STATE_MACHINE,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(ASL_PATH)),
            definition_substitutions={
                "PlanFunctionArn": functions["plan"].function_arn,
                "ExportFunctionArn": functions["export"].function_arn,
                "LoadFunctionArn": functions["load"].function_arn,
                "PublishFunctionArn": functions["publish"].function_arn,
                "CollectFunctionArn": functions["collect"].function_arn,
                "RefreshFunctionArn": functions["refresh"].function_arn,
                "TransformJobName": transform_job_name,
                "EmrApplicationId": spark.application.attr_application_id,
                "EmrJobRoleArn": spark.job_role.role_arn,
                "EmrEntryPoint": code.script.s3_object_url,
                "EmrSparkSubmitParameters": f"--py-files {code.core_package.s3_object_url}"
                " --conf spark.sql.session.timeZone=UTC",
            },
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            timeout=Duration.hours(2),
        )
        for function in functions.values():
            function.grant_invoke(self.state_machine)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["glue:StartJobRun", "glue:GetJobRun"],
                resources=[f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:job/{transform_job_name}"],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["emr-serverless:StartJobRun"], resources=[spark.application.attr_arn])
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["emr-serverless:GetJobRun"], resources=[f"{spark.application.attr_arn}/jobruns/*"]
            )
        )
        spark.job_role.grant_pass_role(self.state_machine.grant_principal)
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5",
            "emr-serverless:GetJobRun is granted on the job runs of the one Spark application"
            " (<application>/jobruns/*):"
            " their ids are only known at run time.",
            findings=(resource_finding(self, f"{spark.application.attr_arn}/jobruns/*"),),
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5",
            "Log delivery (logs:*LogDelivery*, DescribeLogGroups/ResourcePolicies) and X-Ray trace writes accept"
            " no resource ARN; lambda:InvokeFunction covers the versions/aliases (<arn>:*) of the six functions.",
            findings=(
                ANY_RESOURCE,
                *(resource_finding(self, f"{function.function_arn}:*") for function in functions.values()),
            ),
        )

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` start executions: the input is encrypted with the execution key, for this machine only."""
        self.state_machine.grant_start_execution(grantee)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey"],
                resources=[self.execution_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:EncryptionContext:aws:states:stateMachineArn": self.state_machine.state_machine_arn
                    }
                },
            )
        )


class FunctionSchedule(Construct):
    """EventBridge Scheduler invoking one function on a schedule, KMS-encrypted, with retries and a dead-letter
    queue for deliveries that still fail."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        expression: str,
        payload: Mapping[str, object],
        name: str,
        description: str,
        key: kms.IKey,
        max_event_age: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=f"EventBridge Scheduler invokes the {name} function",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            f"lambda:InvokeFunction on the {name} function covers its versions and aliases (<arn>:*).",
            findings=(resource_finding(self, f"{function.function_arn}:*"),),
        )
        self.failures = FailureQueue(self, "Failures", key=key)
        # Sending to a KMS-encrypted queue takes a data key; the target's grant covers only sqs:SendMessage (and the
        # schedule's own kms:Decrypt). Through SQS only, as a principal policy: no edit to the key's policy.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=f"{c.PROJECT}-{name}",
            description=description,
            schedule=scheduler.ScheduleExpression.expression(expression),
            key=key,
            target=targets.LambdaInvoke(
                function,
                role=self.role,
                input=scheduler.ScheduleTargetInput.from_object(dict(payload)),
                dead_letter_queue=self.failures.queue,
                retry_attempts=3,
                max_event_age=max_event_age,
            ),
        )


class HourlySchedule(FunctionSchedule):
    """At minute 5 of every hour, the start function starts the run of the last hour as the execution
    ``hourly-YYYYmmddTHH``, so a repeated delivery cannot start the same hour twice."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: HourlyPipeline,
        starter: lambda_.IFunction,
        key: kms.IKey,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            function=starter,
            expression=HOURLY_CRON,
            payload={"scheduled_time": scheduler.ContextAttribute.scheduled_time},
            name="hourly",
            description="Start the hourly tenant pipeline",
            key=key,
            max_event_age=Duration.hours(1),
        )
        pipeline.grant_start(starter)

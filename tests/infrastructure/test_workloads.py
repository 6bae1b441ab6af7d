"""Pipeline, change stream and query API: the properties the runtime relies on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tenant_analytics import constants as c

from .synthesis import REPO, SynthResult

pytestmark = pytest.mark.xdist_group(name="cdk-synth")

PIPELINE_ENV = (
    c.ENV_TENANTS_TABLE,
    c.ENV_CURSORS_TABLE,
    c.ENV_RAW_BUCKET,
    c.ENV_CURATED_BUCKET,
    c.ENV_ARTIFACTS_BUCKET,
    c.ENV_TRANSFORM_JOB,
    c.ENV_STORES,
    c.ENV_CLUSTER_BUDGETS,
)


def _flatten(value: Any) -> str:
    """A template value as text: literal parts of Fn::Join kept, references reduced to a marker."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(_flatten(part) for part in parts)
    return "<ref>"


def _functions(synth: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        resource["Properties"]["FunctionName"]: resource["Properties"]
        for _, _, resource in synth.resources("AWS::Lambda::Function")
        if "FunctionName" in resource["Properties"]
    }


def test_every_handler_is_deployed_once_with_tracing(synth: SynthResult) -> None:
    functions = _functions(synth)
    for logical, handler in c.LAMBDA_HANDLERS.items():
        props = functions[c.function_name(logical)]
        assert props["Handler"] == handler
        assert props["Runtime"] == "python3.11"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Layers"], logical


def test_pipeline_functions_receive_their_settings(synth: SynthResult) -> None:
    functions = _functions(synth)
    for logical in ("plan", "export", "load", "publish"):
        variables = functions[c.function_name(logical)]["Environment"]["Variables"]
        assert set(PIPELINE_ENV) <= set(variables), logical
        assert variables[c.ENV_TRANSFORM_JOB] == c.TRANSFORM_JOB
        assert json.loads(variables[c.ENV_CLUSTER_BUDGETS])["tenants_per_cluster"] == 600
        stores = _flatten(variables[c.ENV_STORES])
        assert f'"{c.AURORA_STORE_ID}":{{"engine":"postgres","tier":"aurora"' in stores
        assert f'"{c.REDSHIFT_STORE_ID}":{{"engine":"redshift","tier":"redshift"' in stores
        assert f'"workgroup_name":"{c.REDSHIFT_WORKGROUP}"' in stores


def test_the_export_tells_spark_when_to_compact_history(synth: SynthResult) -> None:
    functions = _functions(synth)
    # The default of the deployment context, and only where the transform manifest is written
    assert functions[c.function_name("export")]["Environment"]["Variables"][c.ENV_HISTORY_COMPACT_AFTER_FILES] == "48"
    assert c.ENV_HISTORY_COMPACT_AFTER_FILES not in functions[c.function_name("load")]["Environment"]["Variables"]


def test_authorizer_knows_the_token_issuer(synth: SynthResult) -> None:
    variables = _functions(synth)[c.function_name("authorizer")]["Environment"]["Variables"]
    assert {c.ENV_AUTH_ISSUER, c.ENV_AUTH_AUDIENCE, c.ENV_AUTH_JWKS_URL} <= set(variables)
    assert variables[c.ENV_AUTH_JWKS_URL].startswith("https://")


def test_store_clients_run_in_the_vpc_and_the_others_do_not(synth: SynthResult) -> None:
    functions = _functions(synth)
    for logical in ("load", "refresh", "query", "aggregator"):
        assert "VpcConfig" in functions[c.function_name(logical)], logical
    for logical in ("plan", "export", "publish", "authorizer"):
        assert "VpcConfig" not in functions[c.function_name(logical)], logical


def test_lambda_asset_holds_both_packages_at_its_root(synth: SynthResult) -> None:
    code = _functions(synth)[c.function_name("export")]["Code"]
    assets = json.loads((synth.outdir / "TenantAnalytics-Pipeline.assets.json").read_text())["files"]
    asset_hash = next(h for h in assets if h in json.dumps(code))
    root = synth.outdir / assets[asset_hash]["source"]["path"]
    assert (root / "lambdas").is_dir() and (root / "tenant_analytics" / "constants.py").is_file()


def _rendered_definitions(synth: SynthResult) -> list[str]:
    """Each state machine's definition as CloudFormation will deploy it: the ASL asset with its substitutions."""
    rendered = []
    for _, _, resource in synth.resources("AWS::StepFunctions::StateMachine"):
        props = resource["Properties"]
        if "DefinitionString" in props:
            text = _flatten(props["DefinitionString"])
        else:
            text = (synth.outdir / f"asset.{props['DefinitionS3Location']['Key']}").read_text()
        for name, value in props.get("DefinitionSubstitutions", {}).items():
            assert _flatten(value), name
            text = text.replace("${" + name + "}", _flatten(value))
        rendered.append(text)
    return rendered


def test_every_asl_file_is_deployed_with_all_placeholders_filled(synth: SynthResult) -> None:
    # Given the state machines as they will be deployed
    definitions = _rendered_definitions(synth)
    for asl in sorted((REPO / "state_machines").glob("*.asl.json")):
        comment = json.loads(asl.read_text())["Comment"]
        placeholders = set(re.findall(r"\$\{(\w+)\}", asl.read_text()))
        # Then exactly one carries this file, and none of its ${...} placeholders is left unfilled
        matching = [text for text in definitions if comment in text]
        assert len(matching) == 1, asl.name
        assert placeholders, asl.name
        assert "${" not in matching[0], asl.name


def test_state_machine_logs_everything_and_is_traced(synth: SynthResult) -> None:
    synth.template("Pipeline").has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": c.HOURLY_STATE_MACHINE,
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )


def test_state_machine_role_may_only_run_the_transform_job(synth: SynthResult) -> None:
    glue_statements = [
        statement
        for _, logical_id, policy in synth.resources("AWS::IAM::Policy")
        if "StateMachine" in logical_id
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("glue:") for action in statement["Action"])
    ]
    assert len(glue_statements) == 1
    assert sorted(glue_statements[0]["Action"]) == ["glue:GetJobRun", "glue:StartJobRun"]
    assert _flatten(glue_statements[0]["Resource"]).endswith(f":job/{c.TRANSFORM_JOB}")


def test_glue_job_runs_the_script_with_the_core_package(synth: SynthResult) -> None:
    pipeline = synth.template("Pipeline")
    pipeline.has_resource_properties(
        "AWS::Glue::Job",
        {
            "Name": c.TRANSFORM_JOB,
            "GlueVersion": "5.0",
            "Command": Match.object_like({"Name": "glueetl", "PythonVersion": "3"}),
            "SecurityConfiguration": Match.any_value(),
            "DefaultArguments": Match.object_like({"--extra-py-files": Match.any_value()}),
        },
    )
    pipeline.has_resource_properties(
        "AWS::EMRServerless::Application",
        {"Type": "SPARK", "AutoStopConfiguration": Match.object_like({"Enabled": True})},
    )


def test_aggregator_consumes_the_stream_safely(synth: SynthResult) -> None:
    ingestion = synth.template("Ingestion")
    ingestion.has_resource_properties("AWS::Kinesis::Stream", {"Name": c.CHANGE_STREAM})
    ingestion.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 1000,
            "MaximumBatchingWindowInSeconds": 1,
            "BisectBatchOnFunctionError": True,
            "ParallelizationFactor": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": Match.any_value(),
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    ingestion.has_resource_properties(
        "AWS::SQS::Queue", {"RedrivePolicy": Match.object_like({"deadLetterTargetArn": Match.any_value()})}
    )
    # the aggregator sends malformed records to the failure queue itself, so it knows the queue
    ingestion.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": c.LAMBDA_HANDLERS["aggregator"],
            "Environment": {"Variables": Match.object_like({c.ENV_CDC_FAILURE_QUEUE_URL: Match.any_value()})},
        },
    )


def test_firehose_copies_the_stream_into_raw_cdc(synth: SynthResult) -> None:
    streams = synth.resources("AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == 1
    props = streams[0][2]["Properties"]
    destination = props["ExtendedS3DestinationConfiguration"]
    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert destination["Prefix"].startswith(c.RAW_CDC_PREFIX)
    assert destination["ErrorOutputPrefix"].startswith(c.RAW_CDC_ERRORS_PREFIX)
    assert "AWSKMSKeyARN" in destination["EncryptionConfiguration"]["KMSEncryptionConfig"]
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True


def _function_id(synth: SynthResult, logical: str) -> str:
    found = [
        logical_id
        for _, logical_id, res in synth.resources("AWS::Lambda::Function")
        if res["Properties"].get("Handler") == c.LAMBDA_HANDLERS[logical]
    ]
    assert len(found) == 1
    return found[0]


def test_the_deployment_sets_up_every_store_before_the_query_api_is_updated(synth: SynthResult) -> None:
    # A trigger invokes the setup function and waits for it, again whenever its code or settings change
    ((stack, _, trigger),) = synth.resources("Custom::Trigger")
    props = trigger["Properties"]
    setup = _function_id(synth, "setup")
    version = synth.templates[stack]["Resources"][props["HandlerArn"]["Ref"]]
    assert version["Type"] == "AWS::Lambda::Version" and version["Properties"]["FunctionName"] == {"Ref": setup}
    assert props["InvocationType"] == "RequestResponse" and props["ExecuteOnHandlerChange"] is True
    # and only once the function may do what it does: its policies are resources apart from the version
    policies = [
        logical
        for logical, resource in synth.templates[stack]["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and logical.startswith("Setup")
    ]
    assert policies and set(policies) <= set(trigger.get("DependsOn", []))
    # the setup function reaches the stores as the writers do, and knows nothing else
    function = _functions(synth)[c.function_name("setup")]
    assert set(function["Environment"]["Variables"]) - {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
    } == {c.ENV_STORES}
    assert "VpcConfig" in function
    # and the query API stack of a release is deployed only after the Pipeline stack (and so its trigger)
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert "TenantAnalytics-Pipeline" in manifest["artifacts"]["TenantAnalytics-QueryApi"]["dependencies"]


def test_models_are_refreshed_on_a_schedule_and_between_load_and_publish(synth: SynthResult) -> None:
    # A schedule every few minutes invokes the refresh function with the "all stores" input
    schedules = [
        s for s in synth.resources("AWS::Scheduler::Schedule") if "model-refresh" in s[2]["Properties"]["Name"]
    ]
    assert len(schedules) == 1
    props = schedules[0][2]["Properties"]
    assert props["ScheduleExpression"] == f"rate({c.MODEL_REFRESH_MINUTES} minutes)"
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [_function_id(synth, "refresh"), "Arn"]}
    assert json.loads(props["Target"]["Input"]) == {} and "DeadLetterConfig" in props["Target"]
    # and the state machine calls it after the load, before publish
    definition = json.loads((REPO / "state_machines" / c.ASL_HOURLY).read_text())
    states = definition["States"]["ProcessBatches"]["ItemProcessor"]["States"]
    assert states["Load"]["Next"] == "RefreshModels" and states["RefreshModels"]["Next"] == "Publish"
    # and a stale-models alarm watches it
    alarms = {r["Properties"]["AlarmName"] for _, _, r in synth.resources("AWS::CloudWatch::Alarm")}
    assert {f"{c.PROJECT}-ModelsStale", f"{c.PROJECT}-ModelRefreshFailures"} <= alarms


def test_schedule_starts_the_hourly_run_through_the_start_function(synth: SynthResult) -> None:
    schedules = [
        s for s in synth.resources("AWS::Scheduler::Schedule") if s[2]["Properties"]["Name"].endswith("hourly")
    ]
    assert len(schedules) == 1
    props = schedules[0][2]["Properties"]
    assert props["ScheduleExpression"] == "cron(5 * * * ? *)"
    starters = [
        logical_id
        for _, logical_id, res in synth.resources("AWS::Lambda::Function")
        if res["Properties"].get("Handler") == c.LAMBDA_HANDLERS["start"]
    ]
    assert len(starters) == 1
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [starters[0], "Arn"]}
    assert json.loads(props["Target"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert "DeadLetterConfig" in props["Target"] and "KmsKeyArn" in props
    # and the start function may start executions of the hourly state machine, nothing more
    pipeline = synth.template("Pipeline")
    machine = next(iter(pipeline.find_resources("AWS::StepFunctions::StateMachine")))
    pipeline.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": "states:StartExecution", "Resource": {"Ref": machine}})]
                )
            }
        },
    )


def test_query_api_is_authorized_throttled_and_logged(synth: SynthResult) -> None:
    api = synth.template("QueryApi")
    api.has_resource_properties("AWS::ApiGateway::Authorizer", {"Type": "TOKEN"})
    api.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "AuthorizationType": "CUSTOM",
            "ApiKeyRequired": True,
            "RequestValidatorId": Match.any_value(),
        },
    )
    api.has_resource_properties(
        "AWS::ApiGateway::UsagePlan", {"Throttle": Match.object_like({"RateLimit": Match.any_value()})}
    )
    api.resource_count_is("AWS::ApiGateway::ApiKey", 0)  # each tenant's key is made at registration
    api.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": Match.array_with([Match.object_like({"LoggingLevel": "INFO"})]),
        },
    )
    api.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    assert "QueryUrl" in synth.templates["QueryApi"]["Outputs"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(synth: SynthResult, logical: str) -> list[dict[str, Any]]:
    """The IAM policy statements attached to the role of the function deployed for handler ``logical``."""
    function_id = _function_id(synth, logical)
    _, _, function = next(r for r in synth.resources("AWS::Lambda::Function") if r[1] == function_id)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for _, _, policy in synth.resources("AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _readable_secrets(synth: SynthResult, logical: str) -> str:
    statements = _role_statements(synth, logical)
    return " ".join(
        _flatten(resource)
        for statement in statements
        if "secretsmanager:GetSecretValue" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    )


def test_tenant_queries_log_in_as_read_only_identities_never_with_admin_secrets(synth: SynthResult) -> None:
    # The writers log in with the admin secrets (DDL, loads, refreshes); the query function gets none of them
    # (Redshift applies no RLS policy to a superuser, and Aurora's admin could switch back from the query role)
    functions = _functions(synth)
    query_stores = _flatten(functions[c.function_name("query")]["Environment"]["Variables"][c.ENV_STORES])
    load_stores = _flatten(functions[c.function_name("load")]["Environment"]["Variables"][c.ENV_STORES])
    assert load_stores.count('"secret_arn"') == 2 and '"iam_user"' not in load_stores
    assert '"secret_arn"' not in query_stores
    assert f'"iam_user":"{c.QUERY_LOGIN}"' in query_stores.split(f'"{c.REDSHIFT_STORE_ID}":')[0]  # Aurora's entry
    assert "redshift!" in _readable_secrets(synth, "load")
    # the aggregator, which writes Aurora's realtime bins, nothing on Redshift; only the query function gets
    # Redshift credentials for its own IAM identity
    aggregator = {a for st in _role_statements(synth, "aggregator") for a in _as_list(st["Action"])}
    assert "redshift!" not in _readable_secrets(synth, "aggregator") and _readable_secrets(synth, "aggregator")
    assert not {a for a in aggregator if a.startswith(("redshift-data:", "redshift-serverless:"))}
    for writer in ("load", "refresh"):
        assert "redshift-serverless:GetCredentials" not in str(_role_statements(synth, writer)), writer
    # and publish, which records outcomes in the registry only, may not reach a store at all
    publish_actions = {a for st in _role_statements(synth, "publish") for a in _as_list(st["Action"])}
    assert not {a for a in publish_actions if a.split(":")[0] in {"secretsmanager", "rds-db", "redshift-data"}}
    assert not [st for st in _role_statements(synth, "query") if "secretsmanager" in str(st["Action"])]
    # Aurora: an IAM token for the query login only; Redshift: the Data API as the function's own IAM role, whose
    # name the deployer grants ta_query to
    connect = [st for st in _role_statements(synth, "query") if st["Action"] == "rds-db:connect"]
    assert len(connect) == 1 and _flatten(connect[0]["Resource"]).endswith(f"/{c.QUERY_LOGIN}")
    actions = {a for st in _role_statements(synth, "query") for a in _as_list(st["Action"])}
    assert {"redshift-serverless:GetCredentials", "redshift-data:ExecuteStatement"} <= actions
    assert "redshift-data:BatchExecuteStatement" not in actions  # no DDL batches, only its own statements
    assert "QueryFunctionRoleName" in synth.templates["QueryApi"]["Outputs"]


def test_alarms_notify_the_encrypted_topic(synth: SynthResult) -> None:
    alarms = [resource["Properties"] for _, _, resource in synth.resources("AWS::CloudWatch::Alarm")]
    metrics = {(props.get("Namespace"), props.get("MetricName")) for props in alarms}
    assert {
        ("AWS/Lambda", "IteratorAge"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/Lambda", "Errors"),
        (c.METRICS_NAMESPACE, c.FRESHNESS_METRIC),
    } <= metrics
    assert all(props["AlarmActions"] for props in alarms)
    synth.template("Monitoring").resource_count_is("AWS::CloudWatch::Dashboard", 1)
    # CloudWatch may use the topic's key for this account's alarms only
    keys = [r["Properties"] for s, _, r in synth.resources("AWS::KMS::Key") if s == "Monitoring"]
    (grant,) = [
        statement
        for key in keys
        for statement in key["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


def test_a_platform_without_tenants_is_not_stale_but_a_pipeline_that_stopped_starting_is(synth: SynthResult) -> None:
    alarms = {
        resource["Properties"]["AlarmName"]: resource["Properties"]
        for _, _, resource in synth.resources("AWS::CloudWatch::Alarm")
    }
    # No freshness reported (no tenant loaded) is not an alarm ...
    freshness = alarms[f"{c.PROJECT}-FreshnessLag"]
    assert freshness["MetricName"] == c.FRESHNESS_METRIC and freshness["TreatMissingData"] == "notBreaching"
    # ... while two hours without a started run are, whether the metric is low or missing
    started = alarms[f"{c.PROJECT}-PipelineNotStarted"]
    assert (started["Namespace"], started["MetricName"], started["Statistic"]) == (
        "AWS/States",
        "ExecutionsStarted",
        "Sum",
    )
    assert started["ComparisonOperator"] == "LessThanThreshold" and started["Threshold"] == 1
    assert (started["Period"], started["EvaluationPeriods"], started["TreatMissingData"]) == (3600, 2, "breaching")


def test_network_is_isolated_with_endpoints_and_flow_logs(synth: SynthResult) -> None:
    network = synth.template("Network")
    network.resource_count_is("AWS::EC2::NatGateway", 0)
    network.resource_count_is("AWS::EC2::InternetGateway", 0)
    network.resource_count_is("AWS::EC2::FlowLog", 1)
    endpoints = [resource["Properties"] for _, _, resource in synth.resources("AWS::EC2::VPCEndpoint")]
    services = {_flatten(props["ServiceName"]).rsplit(".", 1)[-1] for props in endpoints}
    assert {"s3", "dynamodb", "secretsmanager", "sts", "logs", "kms", "glue", "redshift-data"} <= services
    # the aggregator in the VPC sends rejected records to its SQS failure queue; in-VPC functions send traces
    assert {"sqs", "xray"} <= services


def test_failed_batches_rerun_through_the_same_map_by_a_function_with_no_data_access(synth: SynthResult) -> None:
    # The batch Map hands its outcomes to the collect step, which loops back to the Map while batches remain
    definition = json.loads((REPO / "state_machines" / c.ASL_HOURLY).read_text())
    states = definition["States"]
    assert states["ProcessBatches"]["Next"] == "CollectOutcomes"
    assert states["CollectOutcomes"]["Parameters"]["FunctionName"] == "${CollectFunctionArn}"
    assert states["CollectOutcomes"]["Next"] == "RerunTenantsAlone"
    assert states["RerunTenantsAlone"]["Choices"] == [
        {"Variable": "$.batches[0]", "IsPresent": True, "Next": "ProcessBatches"}
    ]
    assert states["RerunTenantsAlone"]["Default"] == "Summarize"
    assert states["Summarize"]["Parameters"]["batches.$"] == "$.outcomes"
    # and the collect function runs outside the VPC with no grant to any table, bucket, secret or store
    function_id = _function_id(synth, "collect")
    _, _, function = next(r for r in synth.resources("AWS::Lambda::Function") if r[1] == function_id)
    assert "VpcConfig" not in function["Properties"]
    assert not set(PIPELINE_ENV) & set(function["Properties"]["Environment"]["Variables"])
    actions = {action for statement in _role_statements(synth, "collect") for action in _as_list(statement["Action"])}
    assert not {a for a in actions if a.split(":")[0] in {"dynamodb", "s3", "secretsmanager", "rds", "redshift-data"}}


def test_the_deployment_guide_lists_what_each_function_receives(synth: SynthResult) -> None:
    # Given the table "What the functions receive" of docs/deployment.md: functions, variables, in the VPC
    guide = (REPO / "docs" / "deployment.md").read_text()
    section = guide.split("## What the functions receive", 1)[1].split("\n## ", 1)[0]
    documented: dict[str, tuple[set[str], bool]] = {}
    for row in (line for line in section.splitlines() if line.startswith("| ") and "Function" not in line):
        names, variables, in_vpc = (cell.strip() for cell in row.strip("|").split("|"))
        listed = set(re.findall(r"`([A-Z_]+)`", variables))
        if variables.startswith("the same"):  # the row above's variables, and more
            listed |= next(reversed(documented.values()))[0]
        for name in (n.strip() for n in names.split(",")):
            documented[name] = (listed, in_vpc == "yes" or name in (v.strip() for v in in_vpc.split(",")))
    # Then it names every function with exactly the variables and the network placement it is deployed with
    functions = _functions(synth)
    deployed = {logical: functions[c.function_name(logical)] for logical in c.LAMBDA_HANDLERS}
    assert set(documented) == set(deployed)
    for logical, props in deployed.items():
        variables = {
            name
            for name in props.get("Environment", {}).get("Variables", {})
            if not name.startswith("POWERTOOLS_") and name != "LOG_LEVEL"
        }
        assert documented[logical] == (variables, "VpcConfig" in props), logical


def test_each_schedule_may_write_its_encrypted_dead_letter_queue(synth: SynthResult) -> None:
    schedules = synth.resources("AWS::Scheduler::Schedule")
    assert len(schedules) == 2
    for stack, _, schedule in schedules:
        target = schedule["Properties"]["Target"]
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        queue = synth.templates[stack]["Resources"][queue_id]["Properties"]
        statements = [
            statement
            for _, _, policy in synth.resources("AWS::IAM::Policy")
            if {"Ref": role_id} in policy["Properties"].get("Roles", [])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        # The queue is encrypted with the data key: sending needs sqs:SendMessage and a data key, through SQS only
        sends = [s for s in statements if "sqs:SendMessage" in _as_list(s["Action"])]
        assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
        keys = [s for s in statements if "kms:GenerateDataKey" in _as_list(s["Action"])]
        assert len(keys) == 1 and keys[0]["Resource"] == queue["KmsMasterKeyId"]
        assert keys[0]["Condition"]["StringEquals"]["kms:ViaService"] == "sqs.eu-west-1.amazonaws.com"


@pytest.mark.parametrize("logical", ["load", "refresh", "setup", "query"])
def test_data_api_results_are_readable_only_by_the_identity_that_ran_the_statement(
    synth: SynthResult, logical: str
) -> None:
    # The statement calls take no resource ARN: without the owner condition the query function could read the
    # results of the writers' statements (every tenant's rows)
    reads = [s for s in _role_statements(synth, logical) if "redshift-data:GetStatementResult" in _as_list(s["Action"])]
    assert len(reads) == 1
    assert reads[0]["Condition"] == {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}
    assert "redshift-data:ListStatements" not in _as_list(reads[0]["Action"])  # nothing lists statements


# How each registry table is named in the functions' policies (an export of the TenantRegistry stack).
TABLE_EXPORTS = {"tenants": "TablesTenants", "cursors": "TablesCursors", "cache": "TablesQueryCache"}


@pytest.mark.parametrize(
    ("logical", "table", "calls"),
    [
        ("query", "tenants", ["dynamodb:GetItem"]),
        ("query", "cache", ["dynamodb:GetItem", "dynamodb:PutItem"]),
        ("authorizer", "tenants", ["dynamodb:GetItem"]),
        ("aggregator", "tenants", ["dynamodb:GetItem"]),
        ("load", "tenants", ["dynamodb:GetItem"]),
        ("publish", "tenants", ["dynamodb:UpdateItem"]),
        ("publish", "cursors", ["dynamodb:UpdateItem"]),
    ],
)
def test_functions_make_only_the_item_calls_they_use(
    synth: SynthResult, logical: str, table: str, calls: list[str]
) -> None:
    # A Scan of the tenants table would read every tenant's item, API key values included
    granted = {
        action
        for statement in _role_statements(synth, logical)
        if any(TABLE_EXPORTS[table] in json.dumps(r) for r in _as_list(statement["Resource"]))
        for action in _as_list(statement["Action"])
        if str(action).startswith("dynamodb:")
    }
    assert sorted(granted) == calls


def _s3_grants(synth: SynthResult, logical: str) -> list[tuple[str, str, Any]]:
    """(action, resource, condition) of every S3 action granted to the function ``logical``."""
    return [
        (action, _flatten(resource), statement.get("Condition"))
        for statement in _role_statements(synth, logical)
        for action in _as_list(statement["Action"])
        if str(action).startswith("s3:")
        for resource in _as_list(statement["Resource"])
    ]


def test_export_and_load_touch_only_their_prefixes_of_the_buckets(synth: SynthResult) -> None:
    export, load = _s3_grants(synth, "export"), _s3_grants(synth, "load")
    # The export lists the curated history (never reads a curated object, never lists other tenants' runs)
    curated_export = [g for g in export if "curated" in g[1]]
    assert curated_export == [
        ("s3:ListBucket", g[1], {"StringLike": {"s3:prefix": [f"{c.HISTORY_SUPPORT_PREFIX}/*"]}})
        for g in curated_export
    ]
    # and writes manifests only to the artifacts bucket (no read, no delete)
    artifacts = {(a, r) for a, r, _ in export if "artifacts" in r}
    assert artifacts and all(r.endswith(f"/{c.MANIFESTS_PREFIX}/*") and "Delete" not in a for a, r in artifacts)
    assert not any(a.startswith("s3:Get") for a, r in artifacts)
    # The load reads the curated files of the Spark runs only, and nothing of the other buckets
    assert load and all(f"{c.PROJECT}-curated-" in r for _, r, _ in load)
    assert {(a, r.split("/", 1)[1] if "/" in r else "", json.dumps(cond)) for a, r, cond in load} == {
        ("s3:GetObject", f"{c.CURATED_SUPPORT_PREFIX}/*", "null"),
        ("s3:ListBucket", "", json.dumps({"StringLike": {"s3:prefix": [f"{c.CURATED_SUPPORT_PREFIX}/*"]}})),
    }


def test_spark_roles_read_their_two_code_objects_not_the_whole_asset_bucket(synth: SynthResult) -> None:
    roles = [
        logical
        for _, logical, role in synth.resources("AWS::IAM::Role")
        if logical.startswith(("TransformRole", "SparkServerlessJobRole"))
    ]
    assert len(roles) == 2
    for role in roles:
        on_assets = [
            (action, _flatten(resource))
            for _, _, policy in synth.resources("AWS::IAM::Policy")
            if {"Ref": role} in policy["Properties"].get("Roles", [])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for action in _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"])
            if "cdk-hnb659fds-assets" in _flatten(resource)
        ]
        assert [a for a, _ in on_assets] == ["s3:GetObject", "s3:GetObject"], role
        assert all(r.endswith((".py", ".zip")) for _, r in on_assets), on_assets


def test_executions_are_encrypted_with_a_rotating_key_of_the_platform(synth: SynthResult) -> None:
    ((stack, _, machine),) = synth.resources("AWS::StepFunctions::StateMachine")
    encryption = machine["Properties"]["EncryptionConfiguration"]
    assert encryption["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    key_id = encryption["KmsKeyId"]["Fn::GetAtt"][0]
    assert synth.templates[stack]["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    # and the start function, which passes each execution its input, may encrypt for this machine only
    starts = [s for s in _role_statements(synth, "start") if "kms:GenerateDataKey" in _as_list(s["Action"])]
    assert [s["Resource"] for s in starts] == [{"Fn::GetAtt": [key_id, "Arn"]}]
    assert "kms:EncryptionContext:aws:states:stateMachineArn" in starts[0]["Condition"]["StringEquals"]

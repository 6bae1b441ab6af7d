"""Logs the services write on the platform's behalf (Spark runs, Redshift audit logs, the Aurora rotation function)
land in groups the stacks make first under the logs key; the databases reach out only where they must."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenant_analytics import constants as c

from .synthesis import SynthResult, as_list, policy_text

pytestmark = pytest.mark.xdist_group(name="cdk-synth")

LOGS_ARN = "arn:aws:logs:eu-west-1:111111111111"
AUDIT_LOGS = ("userlog", "connectionlog", "useractivitylog")


def _logs_key_import(synth: SynthResult) -> dict[str, str]:
    """How other stacks refer to the logs key's ARN (an import of the DataLake stack's export)."""
    data_lake = synth.templates["DataLake"]
    (alias,) = [
        r["Properties"]
        for r in data_lake["Resources"].values()
        if r["Type"] == "AWS::KMS::Alias" and r["Properties"]["AliasName"] == f"alias/{c.PROJECT}/logs"
    ]
    (export,) = [o["Export"]["Name"] for o in data_lake["Outputs"].values() if o["Value"] == alias["TargetKeyId"]]
    return {"Fn::ImportValue": export}


def _log_groups(synth: SynthResult, stack: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Literal group name -> (logical id, properties) of the stack's log groups."""
    return {
        resource["Properties"]["LogGroupName"]: (logical_id, resource["Properties"])
        for logical_id, resource in synth.templates[stack]["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup" and isinstance(resource["Properties"].get("LogGroupName"), str)
    }


def _assert_under_the_logs_key(synth: SynthResult, group: dict[str, Any]) -> None:
    assert group["KmsKeyId"] == _logs_key_import(synth)
    assert group["RetentionInDays"] == 365


def test_spark_runs_on_emr_serverless_log_to_an_encrypted_group_their_role_may_write(synth: SynthResult) -> None:
    # Given the EMR Serverless application and the job role the state machine passes to its runs
    pipeline = synth.templates["Pipeline"]["Resources"]
    (app,) = [r for r in pipeline.values() if r["Type"] == "AWS::EMRServerless::Application"]
    (machine,) = [r for r in pipeline.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    role_id = machine["Properties"]["DefinitionSubstitutions"]["EmrJobRoleArn"]["Fn::GetAtt"][0]
    # Then the application sends its runs' logs to CloudWatch, into a group of the stack under the logs key (a
    # reference: CloudFormation makes the group first)
    logging = app["Properties"]["MonitoringConfiguration"]["CloudWatchLoggingConfiguration"]
    assert logging["Enabled"] is True
    group_id = logging["LogGroupName"]["Ref"]
    group = pipeline[group_id]["Properties"]
    assert group["LogGroupName"] == f"/aws/emr-serverless/{c.EMR_APPLICATION}"
    _assert_under_the_logs_key(synth, group)
    # And the job role may find that group, and create and write streams in it, and nothing else of CloudWatch Logs
    statements = [
        statement
        for resource in pipeline.values()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", [])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    own = f"{LOGS_ARN}:log-group:/aws/emr-serverless/{c.EMR_APPLICATION}:*"
    logs = {
        (action, policy_text(resource))
        for statement in statements
        for action in as_list(statement["Action"])
        if action.startswith("logs:")
        for resource in as_list(statement["Resource"])
    }
    assert logs == {
        ("logs:DescribeLogGroups", f"{LOGS_ARN}:*"),
        ("logs:DescribeLogStreams", own),
        ("logs:CreateLogStream", own),
        ("logs:PutLogEvents", own),
    }


def test_redshift_audit_logs_go_to_groups_made_first_under_the_logs_key(synth: SynthResult) -> None:
    warehouse = synth.templates["Warehouse"]["Resources"]
    groups = _log_groups(synth, "Warehouse")
    namespaces = {
        r["Properties"]["NamespaceName"]: r
        for r in warehouse.values()
        if r["Type"] == "AWS::RedshiftServerless::Namespace"
    }
    assert set(namespaces) == {c.REDSHIFT_NAMESPACE, c.ANALYST_NAMESPACE}
    for name, namespace in namespaces.items():
        assert set(namespace["Properties"]["LogExports"]) == set(AUDIT_LOGS)
        for log_type in AUDIT_LOGS:
            # Redshift Serverless exports each log into /aws/redshift/<namespace>/<log type>, creating it (without
            # encryption or retention) unless it exists
            logical_id, group = groups[f"/aws/redshift/{name}/{log_type}"]
            _assert_under_the_logs_key(synth, group)
            assert logical_id in namespace["DependsOn"], (name, log_type)


def test_the_rotation_function_logs_to_a_group_made_first_under_the_logs_key(synth: SynthResult) -> None:
    # Given the Secrets Manager rotation application of the Aurora admin secret (its function is named by CDK)
    warehouse = synth.templates["Warehouse"]["Resources"]
    (rotation,) = [r for r in warehouse.values() if r["Type"] == "AWS::Serverless::Application"]
    function_name = rotation["Properties"]["Parameters"]["functionName"]
    assert isinstance(function_name, str) and function_name
    # Then its log group exists before the application, encrypted and with a retention
    logical_id, group = _log_groups(synth, "Warehouse")[f"/aws/lambda/{function_name}"]
    _assert_under_the_logs_key(synth, group)
    assert logical_id in rotation["DependsOn"]


def _egress(synth: SynthResult, stack: str, group_id: str) -> list[dict[str, Any]]:
    """Every egress rule of a security group: inline and as separate resources."""
    resources = synth.templates[stack]["Resources"]
    inline = resources[group_id]["Properties"].get("SecurityGroupEgress", [])
    separate = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress"
        and r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    return [*inline, *separate]


def test_the_aurora_cluster_may_reach_out_only_over_https(synth: SynthResult) -> None:
    # Given the Aurora cluster's security groups
    warehouse = synth.templates["Warehouse"]["Resources"]
    (cluster,) = [r["Properties"] for r in warehouse.values() if r["Type"] == "AWS::RDS::DBCluster"]
    groups = [ref["Fn::GetAtt"][0] for ref in cluster["VpcSecurityGroupIds"]]
    assert groups
    for group_id in groups:
        # Then the only way out is HTTPS: S3 (aws_s3 imports) through the isolated VPC's gateway endpoint
        rules = [
            {k: v for k, v in rule.items() if k != "Description"} for rule in _egress(synth, "Warehouse", group_id)
        ]
        assert rules == [{"CidrIp": "0.0.0.0/0", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}], group_id


def test_no_security_group_in_the_vpc_allows_all_outbound_traffic(synth: SynthResult) -> None:
    for stack in ("Warehouse", "Network", "Pipeline"):
        for group_id, resource in synth.templates[stack]["Resources"].items():
            if resource["Type"] != "AWS::EC2::SecurityGroup":
                continue
            rules = _egress(synth, stack, group_id)
            assert rules, group_id
            assert all(str(rule["IpProtocol"]) != "-1" for rule in rules), (group_id, rules)


def test_the_trigger_provider_logs_to_an_encrypted_group_and_may_write_only_there(synth: SynthResult) -> None:
    # Given the function CDK makes to run the SetupStores trigger, and its role
    pipeline = synth.templates["Pipeline"]["Resources"]
    (handler,) = [
        r for k, r in pipeline.items() if r["Type"] == "AWS::Lambda::Function" and "TriggerCustomResourceProvider" in k
    ]
    role = pipeline[handler["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]

    # Then it logs to a group of the stack under the logs key, made before it
    group_id = handler["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert group_id in handler["DependsOn"]
    group = pipeline[group_id]["Properties"]
    assert group["LogGroupName"] == f"/aws/lambda/{c.function_name('setup')}-trigger"
    _assert_under_the_logs_key(synth, group)
    # And its role has no AWS-managed policy (AWSLambdaBasicExecutionRole writes every group) and log rights on that
    # group only, besides invoking the trigger's handler
    assert "ManagedPolicyArns" not in role
    logs = {
        (action, json.dumps(resource))
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
        if action.startswith("logs:")
        for resource in as_list(statement["Resource"])
    }
    own = json.dumps({"Fn::GetAtt": [group_id, "Arn"]})
    assert logs == {("logs:CreateLogStream", own), ("logs:PutLogEvents", own)}

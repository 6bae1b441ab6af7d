"""The platform's functions: each runs as a role of its own that may write only its own log group, and keeps its
settings under the platform's data key."""

from __future__ import annotations

from typing import Any

import pytest

from tenant_analytics import constants as c

from .synthesis import SynthResult, as_list, policy_text

pytestmark = pytest.mark.xdist_group(name="cdk-synth")

LOGS_ARN = "arn:aws:logs:eu-west-1:111111111111"
EC2_IN_ACCOUNT = "arn:aws:ec2:eu-west-1:111111111111:*/*"
ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def _functions(synth: SynthResult) -> dict[str, tuple[str, dict[str, Any]]]:
    """Deployed name -> (stack, properties) of every function of the platform."""
    return {
        resource["Properties"]["FunctionName"]: (stack, resource["Properties"])
        for stack, _, resource in synth.resources("AWS::Lambda::Function")
        if resource["Properties"].get("FunctionName", "").startswith(f"{c.PROJECT}-")
    }


def _role_statements(synth: SynthResult, stack: str, role_id: str) -> list[dict[str, Any]]:
    """Every statement the role holds: its inline policies and the policies attached to it."""
    resources = synth.templates[stack]["Resources"]
    inline = [
        statement
        for policy in resources[role_id]["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    attached = [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", [])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    return inline + attached


def _grants(statements: list[dict[str, Any]], service: str) -> set[tuple[str, str]]:
    return {
        (action, policy_text(resource))
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if action.startswith(f"{service}:")
        for resource in as_list(statement["Resource"])
    }


def test_every_handler_runs_as_a_role_without_aws_managed_policies(synth: SynthResult) -> None:
    # Given the platform's functions (one per handler)
    functions = _functions(synth)
    assert {c.function_name(logical) for logical in c.LAMBDA_HANDLERS} <= set(functions)
    for name, (stack, props) in functions.items():
        role = synth.templates[stack]["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
        # Then Lambda alone assumes its role, and no AWS-managed policy (logs on every group) is attached to it
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ], name
        assert not role.get("ManagedPolicyArns"), name


def test_each_function_may_write_only_its_own_log_group(synth: SynthResult) -> None:
    for name, (stack, props) in _functions(synth).items():
        # Given the group the function logs to (made by the stack, encrypted)
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        group = synth.templates[stack]["Resources"][group_id]["Properties"]
        assert group["LogGroupName"] == f"/aws/lambda/{name}" and "KmsKeyId" in group
        # Then its role may create streams in that group and put events into them, nothing else of CloudWatch Logs
        statements = _role_statements(synth, stack, props["Role"]["Fn::GetAtt"][0])
        own_group = f"{LOGS_ARN}:log-group:/aws/lambda/{name}:*"
        assert _grants(statements, "logs") == {
            ("logs:CreateLogStream", own_group),
            ("logs:PutLogEvents", own_group),
        }, name


def test_functions_in_the_vpc_manage_their_interfaces_and_the_others_have_no_ec2_rights(synth: SynthResult) -> None:
    for name, (stack, props) in _functions(synth).items():
        statements = _role_statements(synth, stack, props["Role"]["Fn::GetAtt"][0])
        ec2 = _grants(statements, "ec2")
        if "VpcConfig" not in props:
            assert ec2 == set(), name
            continue
        # Describe calls take no resource; the calls that change an interface are limited to this account and region
        assert {action for action, _ in ec2} == ENI_ACTIONS, name
        for action, resource in ec2:
            assert resource == ("*" if action.startswith("ec2:Describe") else EC2_IN_ACCOUNT), (name, action)


def test_functions_still_send_traces(synth: SynthResult) -> None:
    for name, (stack, props) in _functions(synth).items():
        statements = _role_statements(synth, stack, props["Role"]["Fn::GetAtt"][0])
        assert {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")} <= _grants(statements, "xray"), name


def test_function_settings_are_encrypted_with_the_platform_data_key(synth: SynthResult) -> None:
    # Given the data key's ARN as the DataLake stack exports it
    data_lake = synth.templates["DataLake"]
    (alias,) = [
        r["Properties"]
        for r in data_lake["Resources"].values()
        if r["Type"] == "AWS::KMS::Alias" and r["Properties"]["AliasName"] == f"alias/{c.PROJECT}/data"
    ]
    (export,) = [o["Export"]["Name"] for o in data_lake["Outputs"].values() if o["Value"] == alias["TargetKeyId"]]
    # Then every function's environment is encrypted with it, not with the AWS-managed Lambda key
    for name, (_, props) in _functions(synth).items():
        assert props["KmsKeyArn"] == {"Fn::ImportValue": export}, name

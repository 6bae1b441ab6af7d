"""The scheduled start: one execution per hour, named after the hour; a repeated delivery starts nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber

from tenant_analytics.pipeline.start import StartRequest, execution_name, start_hourly_run

ARN = "arn:aws:states:eu-west-1:111111111111:stateMachine:tenant-analytics-hourly"


def test_names_are_per_hour_and_valid_for_step_functions() -> None:
    hour = datetime(2026, 1, 31, 13, tzinfo=UTC)
    assert execution_name(hour) == "hourly-20260131T13"
    assert execution_name(hour, 3) == "hourly-20260131T13-3"
    assert ":" not in execution_name(hour)


def test_the_last_complete_hour_is_started_once() -> None:
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    request = StartRequest(scheduled_time=datetime(2026, 1, 31, 14, 5, tzinfo=UTC))
    expected = {
        "stateMachineArn": ARN,
        "name": "hourly-20260131T13",
        "input": json.dumps({"hour": "2026-01-31T13:00:00+00:00"}),
    }
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_execution", {"executionArn": f"{ARN}:x", "startDate": datetime(2026, 1, 31, 14, 5)}, expected
        )
        stub.add_client_error("start_execution", "ExecutionAlreadyExists", expected_params=expected)
        first = start_hourly_run(sfn, ARN, request)
        again = start_hourly_run(sfn, ARN, request)
    assert first.started and first.execution_name == "hourly-20260131T13"
    assert not again.started and again.hour == first.hour

"""Start step of the schedule: one execution per hour, named after the hour, so a repeated start is a no-op."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from tenant_analytics.pipeline.plan import last_complete_hour


class StartRequest(BaseModel):
    """What the schedule sends: the time it was due (``<aws.scheduler.scheduled-time>``)."""

    scheduled_time: datetime


class StartResult(BaseModel):
    execution_name: str
    hour: datetime
    started: bool
    execution_arn: str | None = None


def execution_name(hour: datetime, attempt: int = 1) -> str:
    """``hourly-20260131T13`` (Step Functions names allow no ':'); later attempts get ``-2``, ``-3``, ..."""
    base = f"hourly-{hour:%Y%m%dT%H}"
    return base if attempt == 1 else f"{base}-{attempt}"


def start_hourly_run(sfn: Any, state_machine_arn: str, request: StartRequest) -> StartResult:
    """Start the run of the hour before ``scheduled_time``; an execution of that name already existing means
    the hour was started before (a retried delivery), which is reported, not repeated."""
    hour = last_complete_hour(request.scheduled_time)
    name = execution_name(hour)
    try:
        arn = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps({"hour": hour.isoformat()})
        )["executionArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        return StartResult(execution_name=name, hour=hour, started=False)
    return StartResult(execution_name=name, hour=hour, started=True, execution_arn=arn)

"""Every state a Glue or EMR Serverless run can report leads the hourly state machine somewhere: on to the load,
back to waiting while the run is alive, or to the batch's failure. None loops until the execution times out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tenant_analytics import constants as c

ASL = json.loads((Path(__file__).resolve().parents[3] / "state_machines" / c.ASL_HOURLY).read_text())
STATES = ASL["States"]["ProcessBatches"]["ItemProcessor"]["States"]

# The services' documented run states (Glue JobRunState, EMR Serverless JobRunState), by what they mean.
GLUE = {
    "Load": ["SUCCEEDED"],
    "WaitForTransform": ["STARTING", "RUNNING", "STOPPING", "WAITING"],
    "TransformFailed": ["FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED"],
}
EMR = {
    "Load": ["SUCCESS"],
    "WaitForEmrRun": ["SUBMITTED", "PENDING", "SCHEDULED", "QUEUED", "RUNNING", "CANCELLING"],
    "TransformFailed": ["FAILED", "CANCELLED"],
}


def _matches(rule: dict[str, Any], state: str) -> bool:
    if "Or" in rule:
        return any(_matches(r, state) for r in rule["Or"])
    assert rule["Variable"] == "$.transform.state" and set(rule) <= {"Variable", "StringEquals", "Next"}, rule
    return bool(rule["StringEquals"] == state)


def next_state(choice: str, run_state: str) -> str:
    """Where the Choice state ``choice`` of the deployed definition sends a run in ``run_state``."""
    definition = STATES[choice]
    for rule in definition["Choices"]:
        if _matches(rule, run_state):
            return str(rule["Next"])
    return str(definition["Default"])


@pytest.mark.parametrize(
    ("choice", "meaning"), [("TransformDone", GLUE), ("EmrRunDone", EMR)], ids=["glue", "emr-serverless"]
)
def test_every_run_state_leads_on_waits_or_fails_the_batch(choice: str, meaning: dict[str, list[str]]) -> None:
    for expected, run_states in meaning.items():
        for run_state in run_states:
            assert next_state(choice, run_state) == expected, run_state
    # and a state the service adds later is a failure, not an endless wait
    assert next_state(choice, "SOME_NEW_STATE") == "TransformFailed"


def test_a_retried_emr_start_names_the_run_already_started() -> None:
    # The client token is a function of the execution and the batch, not a fresh UUID per attempt: EMR Serverless
    # answers a retried start with the same token by returning the run it started, never a second run
    token = STATES["StartEmrRun"]["Parameters"]["ClientToken.$"]
    assert "States.UUID" not in token
    assert token == "States.Hash(States.Format('{}-{}', $.run_id, $.batch.batch_id), 'SHA-1')"

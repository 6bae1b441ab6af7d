"""Between passes of the batch Map: outcomes gathered, failed batches split to run tenant by tenant (pure logic)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.pipeline.models import Batch, PipelineRound, PublishResult, StateError, TenantFailure
from tenant_analytics.pipeline.rounds import collect_round

HOUR = datetime(2026, 3, 4, 9, tzinfo=UTC)


def round_of(
    batches: list[Batch], results: list[PublishResult], outcomes: list[PublishResult] | None = None
) -> PipelineRound:
    return PipelineRound(
        hour=HOUR,
        run_id="r1",
        max_concurrency=4,
        poll_seconds=0,
        batches=batches,
        results=results,
        outcomes=outcomes or [],
    )


def test_a_pass_without_failed_batches_ends_with_one_outcome_per_batch_in_plan_order() -> None:
    # Given two batches that both published
    batches = [Batch(batch_id="b0", tenants=["a", "b"]), Batch(batch_id="e0", tenants=["c"], engine="emr")]
    results = [PublishResult(batch_id="b0", loaded=["a", "b"]), PublishResult(batch_id="e0", unchanged=["c"])]

    # When the pass is collected
    following = collect_round(round_of(batches, results))

    # Then nothing runs again and the outcomes are the results, in order
    assert following.batches == [] and following.results == []
    assert following.outcomes == results
    assert (following.hour, following.run_id, following.max_concurrency) == (HOUR, "r1", 4)


def test_a_failed_batch_comes_back_as_one_batch_per_tenant_on_the_same_engine() -> None:
    # Given a batch whose transform failed for three tenants in flight (a fourth was unchanged)
    batches = [Batch(batch_id="b0", tenants=["a", "b", "c", "d"]), Batch(batch_id="b1", tenants=["e"])]
    results = [
        PublishResult(batch_id="b0", unchanged=["d"], retried_alone=["a", "b", "c"], records_exported=30),
        PublishResult(batch_id="b1", loaded=["e"]),
    ]

    # When the pass is collected
    following = collect_round(round_of(batches, results))

    # Then each tenant in flight runs again alone, tied to its batch, and the outcomes so far are kept
    assert following.batches == [
        Batch(batch_id=f"b0-{t}", tenants=[t], engine="glue", retry_of="b0") for t in ("a", "b", "c")
    ]
    assert [o.batch_id for o in following.outcomes] == ["b0", "b1"]
    assert following.outcomes[0].unchanged == ["d"] and following.outcomes[0].records_exported == 30


def test_re_runs_are_merged_into_the_batch_they_came_from_and_the_execution_ends() -> None:
    # Given the first pass split b0, and the re-runs published: a loaded, b failed alone, c's publish unrecorded
    first = collect_round(
        round_of(
            [Batch(batch_id="b0", tenants=["a", "b", "c", "d"]), Batch(batch_id="b1", tenants=["e"])],
            [
                PublishResult(
                    batch_id="b0",
                    retried_alone=["a", "b", "c", "d"],
                    records_exported=9,
                    records_by_stream={"tickets": 9},
                ),
                PublishResult(batch_id="b1", loaded=["e"], freshness_lag_seconds=100),
            ],
        )
    )
    failure = TenantFailure(tenant_id="b", step="transform", error="TransformFailed: Spark run ended FAILED")
    results = [
        PublishResult(
            batch_id="b0-a",
            loaded=["a"],
            records_exported=4,
            records_by_stream={"tickets": 3, "users": 1},
            records_quarantined=1,
            freshness_lag_seconds=400,
        ),
        PublishResult(batch_id="b0-b", failed=[failure], records_exported=2, records_by_stream={"tickets": 2}),
        PublishResult(
            batch_id="b0-c", unrecorded_tenants=["c"], error=StateError(Error="States.Timeout", Cause="registry")
        ),
        PublishResult(
            batch_id="b0-d", unrecorded_tenants=["d"], error=StateError(Error="Lambda.ServiceException", Cause="503")
        ),
    ]

    # When the second pass is collected
    final = collect_round(first.model_copy(update={"results": results}))

    # Then nothing runs again, and b0's outcome adds up its re-runs; b1's is untouched
    assert final.batches == []
    b0, b1 = final.outcomes
    assert b0.batch_id == "b0" and b0.retried_alone == ["a", "b", "c", "d"]
    assert b0.loaded == ["a"] and b0.failed == [failure] and b0.unrecorded_tenants == ["c", "d"]
    assert b0.records_exported == 9 + 4 + 2 and b0.records_by_stream == {"tickets": 14, "users": 1}
    assert b0.records_quarantined == 1 and b0.freshness_lag_seconds == 400
    # and every unrecorded failure keeps its error, not only the first
    assert b0.error is not None and b0.error.error == "States.Timeout"
    assert [e.error for e in b0.more_errors] == ["Lambda.ServiceException"]
    assert b1 == PublishResult(batch_id="b1", loaded=["e"], freshness_lag_seconds=100)


def test_the_state_machine_payloads_round_trip_with_step_functions_error_names() -> None:
    # Given a pass as the state machine hands it over, one outcome being the Map's unrecorded-failure shape
    event: dict[str, Any] = {
        "hour": "2026-03-04T09:00:00Z",
        "run_id": "r1",
        "max_concurrency": 2,
        "poll_seconds": 30,
        "batches": [{"batch_id": "b0", "tenants": ["a"], "engine": "glue", "rows": 10}],
        "results": [
            {
                "batch_id": "b0",
                "loaded": [],
                "unchanged": [],
                "failed": [],
                "unrecorded_tenants": ["a"],
                "error": {"Error": "Lambda.Unknown", "Cause": "boom"},
            }
        ],
    }

    # When it is collected and written back as the Lambda returns it
    out = collect_round(PipelineRound.model_validate(event)).model_dump(mode="json", exclude_none=True, by_alias=True)

    # Then the outcome keeps the error under the names Step Functions uses, and the next pass runs nothing
    assert out["batches"] == [] and out["outcomes"][0]["error"] == {"Error": "Lambda.Unknown", "Cause": "boom"}
    assert out["outcomes"][0]["unrecorded_tenants"] == ["a"]


@pytest.mark.parametrize(
    ("batches", "results", "outcomes", "field", "message"),
    [
        ([Batch(batch_id="b0", tenants=["a"])], [], [], "results", "0 outcome(s) for 1 batch(es)"),
        (
            [Batch(batch_id="b0", tenants=["a"])],
            [PublishResult(batch_id="b9")],
            [],
            "results",
            "outcome of batch 'b9' where 'b0' was expected",
        ),
        (
            [Batch(batch_id="b0-a", tenants=["a"], retry_of="b0")],
            [PublishResult(batch_id="b0-a")],
            [PublishResult(batch_id="b1")],
            "batches",
            "re-runs batch 'b0', which has no outcome; known: ['b1']",
        ),
    ],
)
def test_results_that_do_not_answer_the_batches_are_rejected(
    batches: list[Batch], results: list[PublishResult], outcomes: list[PublishResult], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as err:
        collect_round(round_of(batches, results, outcomes))
    assert err.value.field == field

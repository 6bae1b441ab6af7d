"""Between passes of the hourly batch Map: gather outcomes and split failed batches into one batch per tenant.

The first pass runs the planned batches. When a shared step (export, transform, load) fails for a batch of several
tenants, its publish step fails none of them and lists them in ``retried_alone``; the next pass runs each of those
tenants in a batch of its own, all side by side under the same concurrency limit, and their outcomes are merged into
the outcome of the batch they came from. A batch of one tenant is never split, so an execution makes at most two
passes, and its output keeps one outcome per planned batch.
"""

from __future__ import annotations

from tenant_analytics.errors import InvalidInput

from .models import Batch, PipelineRound


def collect_round(state: PipelineRound) -> PipelineRound:
    """Fold the pass that ran (``batches`` and their ``results``) into ``outcomes``; return the next pass.

    The returned state's ``batches`` are the single-tenant re-runs the pass asked for (empty when the execution is
    complete), its ``results`` are empty and its ``outcomes`` hold one outcome per planned batch, in plan order.
    Raises InvalidInput when the results do not answer the batches one for one, or a re-run names no known batch.
    """
    if len(state.results) != len(state.batches):
        raise InvalidInput(
            f"results: {len(state.results)} outcome(s) for {len(state.batches)} batch(es); the Map returns one "
            "outcome per batch, in order",
            field="results",
        )
    outcomes = {outcome.batch_id: outcome.model_copy(deep=True) for outcome in state.outcomes}
    following: list[Batch] = []
    for batch, result in zip(state.batches, state.results, strict=True):
        if result.batch_id != batch.batch_id:
            raise InvalidInput(
                f"results: outcome of batch {result.batch_id!r} where {batch.batch_id!r} was expected", field="results"
            )
        if batch.retry_of is None:
            outcomes[batch.batch_id] = result.model_copy(deep=True)
            following += [
                Batch(
                    batch_id=f"{batch.batch_id}-{tenant}",
                    tenants=[tenant],
                    engine=batch.engine,
                    retry_of=batch.batch_id,
                )
                for tenant in result.retried_alone
            ]
        elif batch.retry_of in outcomes:
            outcomes[batch.retry_of].merge(result)
        else:
            raise InvalidInput(
                f"batches: {batch.batch_id!r} re-runs batch {batch.retry_of!r}, which has no outcome; known: "
                f"{sorted(outcomes)}",
                field="batches",
            )
    return PipelineRound(
        hour=state.hour,
        run_id=state.run_id,
        max_concurrency=state.max_concurrency,
        poll_seconds=state.poll_seconds,
        batches=following,
        outcomes=list(outcomes.values()),
    )

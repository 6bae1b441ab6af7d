"""Setting up every store at deploy time, before the query API of the release is served.

A store sets itself up on a writer's first use (roles, tables, change capture, the models' views), and the query
path never does. Run once by the deployment, this makes a new deployment's stores, and a release's schema and model
changes, ready before anything reads them, and makes a store that cannot be set up fail the deployment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from tenant_analytics.errors import StoreUnavailable, one_line
from tenant_analytics.stores.base import AnalyticsStore


@dataclass
class SetupResult:
    set_up: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # store id -> why


def set_up_stores(
    store_ids: Iterable[str],
    open_store: Callable[[str], AnalyticsStore],
    also: Mapping[str, Callable[[], object]] | None = None,
) -> SetupResult:
    """Open each store as a writer (which creates or migrates its schema), every one even after a failure, then run
    each of ``also`` (name -> a set-up of its own, such as the realtime bins' schema).

    Raises StoreUnavailable naming every store that could not be set up and why; returns the stores set up.
    """
    result = SetupResult()
    steps: list[tuple[str, Callable[[], object]]] = [
        *((store_id, functools.partial(open_store, store_id)) for store_id in store_ids),
        *(also or {}).items(),
    ]
    for store_id, set_up in steps:
        try:
            set_up()
        except Exception as exc:  # every store is tried; each failure is reported below
            result.failed[store_id] = one_line(exc).splitlines()[0]  # a driver's message may run over lines
        else:
            result.set_up.append(store_id)
    if result.failed:
        reasons = "; ".join(f"{store_id}: {why}" for store_id, why in result.failed.items())
        done = f" (set up: {', '.join(result.set_up)})" if result.set_up else ""
        raise StoreUnavailable(f"{len(result.failed)} store(s) could not be set up: {reasons}{done}")
    return result

"""Fixtures of the change-stream integration tests: a fresh realtime store per test on the test PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenant_analytics.cdc.store import RealtimeStore
from tenant_analytics.local.postgres import ensure_database


@pytest.fixture
def realtime_url(pg_admin: str, db_prefix: str) -> str:
    """URL of a fresh database for one test."""
    return ensure_database(pg_admin, f"{db_prefix}_rt")


@pytest.fixture
def realtime_store(realtime_url: str) -> Iterator[RealtimeStore]:
    """A RealtimeStore with its schema created."""
    store = RealtimeStore(realtime_url, store_id="test-rt")
    store.ensure_schema()
    yield store
    store.close()

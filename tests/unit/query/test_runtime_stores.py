"""The query path's store opener: which stores it migrates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenant_analytics import constants as c
from tenant_analytics.query import runtime
from tenant_analytics.settings import get_settings


def test_the_query_path_creates_no_tables_where_it_logs_in_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the stores the query function reaches as read-only identities (Redshift as its IAM role, Aurora as the
    # query login), and a PostgreSQL store reached with full credentials (local stores); none is the realtime store
    stores = {
        "redshift-1": {"engine": "redshift", "tier": "redshift", "workgroup_name": "wg", "database": "analytics"},
        "aurora-3": {"engine": "postgres", "tier": "aurora", "host": "db.example", "iam_user": c.QUERY_LOGIN},
        "aurora-2": {"engine": "postgres", "tier": "aurora", "dsn": "postgresql://localhost/analytics"},
    }
    monkeypatch.setenv(c.ENV_STORES, json.dumps(stores))
    get_settings.cache_clear()
    runtime.reset()
    opened: dict[str, bool] = {}

    def recording_open(store_id: str, settings: Any, *, migrate: bool = True) -> object:
        opened[store_id] = migrate
        return object()

    monkeypatch.setattr(runtime, "open_store", recording_open)
    try:
        # When the query service opens each
        service = runtime.query_service()
        for store_id in stores:
            service._open_store(store_id)
    finally:
        runtime.reset()
        get_settings.cache_clear()

    # Then it asks to create tables only where it has the credentials to
    assert opened == {"redshift-1": False, "aurora-3": False, "aurora-2": True}

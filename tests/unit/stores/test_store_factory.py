"""Store settings: how long a PostgreSQL store keeps change images for a failing model, validated and passed on."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tenant_analytics import constants as c
from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import get_settings
from tenant_analytics.stores import factory


@pytest.fixture(autouse=True)
def fresh_settings() -> Any:
    get_settings.cache_clear()
    factory._open.clear()
    yield
    get_settings.cache_clear()
    factory._open.clear()


def stores_env(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    store = {"engine": "postgres", "tier": "aurora", "dsn": "postgresql://localhost/analytics", **extra}
    monkeypatch.setenv(c.ENV_STORES, json.dumps({"aurora-1": store}))


def test_a_limit_that_is_not_positive_is_rejected_naming_the_store_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store whose change images would be dropped at once
    stores_env(monkeypatch, stale_model_after_hours=0)

    # When the settings are read, then the error names the store's field and what is allowed
    with pytest.raises(InvalidInput, match=r"'stores\.aurora-1\.stale_model_after_hours' is invalid: .*greater than 0"):
        get_settings()


def test_the_store_limit_reaches_the_model_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store that keeps images for a failing model for six hours (the default is a day)
    stores_env(monkeypatch, stale_model_after_hours=6)
    opened: dict[str, Any] = {}

    class RecordingStore:
        def __init__(self, store_id: str, conninfo: str, **options: Any) -> None:
            opened.update(options, store_id=store_id)

        def ensure_schema(self) -> None:
            pass

    monkeypatch.setattr(factory, "PostgresStore", RecordingStore)

    # When the store is opened
    factory.open_store("aurora-1", get_settings())

    # Then the engine is given that limit
    assert opened["store_id"] == "aurora-1" and opened["stale_model_after"] == timedelta(hours=6)


def test_without_the_field_a_store_keeps_images_for_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    stores_env(monkeypatch)
    assert get_settings().stores["aurora-1"].stale_model_after_hours == 24

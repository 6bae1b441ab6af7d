"""Settings of the change-stream aggregator: the only cdc module that reads ``os.environ``, once, validated."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Final

from pydantic import BaseModel, Field, ValidationError

from tenant_analytics import constants as c
from tenant_analytics.cdc.aggregator import AggregatorOptions
from tenant_analytics.cdc.model import SourceFormat
from tenant_analytics.errors import InvalidInput

ENV_FAILURE_QUEUE_URL: Final = c.ENV_CDC_FAILURE_QUEUE_URL
ENV_STORE_ID: Final = c.ENV_CDC_STORE_ID
ENV_SOURCE_FORMAT: Final = c.ENV_CDC_SOURCE_FORMAT
ENV_ALLOWED_LATENESS: Final = c.ENV_CDC_ALLOWED_LATENESS
ENV_MAX_FUTURE: Final = c.ENV_CDC_MAX_FUTURE
ENV_DEDUPE_MARGIN: Final = c.ENV_CDC_DEDUPE_MARGIN
ENV_METRICS_CONFIG: Final = c.ENV_CDC_METRICS_CONFIG

_FIELDS: Final = {
    ENV_FAILURE_QUEUE_URL: "failure_queue_url",
    ENV_STORE_ID: "store_id",
    ENV_SOURCE_FORMAT: "source_format",
    ENV_ALLOWED_LATENESS: "allowed_lateness_seconds",
    ENV_MAX_FUTURE: "max_future_seconds",
    ENV_DEDUPE_MARGIN: "dedupe_margin_seconds",
    ENV_METRICS_CONFIG: "metrics_config",
}


class CdcSettings(BaseModel):
    """Runtime settings of the aggregator Lambda and local replay."""

    failure_queue_url: str | None = None
    store_id: str = c.AURORA_STORE_ID
    source_format: SourceFormat = SourceFormat.AUTO
    allowed_lateness_seconds: int = Field(default=3600, ge=0)
    max_future_seconds: int = Field(default=300, ge=0)
    dedupe_margin_seconds: int = Field(default=600, ge=0)
    metrics_config: Path | None = None

    def options(self) -> AggregatorOptions:
        """Return the aggregation options these settings describe."""
        return AggregatorOptions(
            source_format=self.source_format,
            allowed_lateness=timedelta(seconds=self.allowed_lateness_seconds),
            max_future=timedelta(seconds=self.max_future_seconds),
            dedupe_margin=timedelta(seconds=self.dedupe_margin_seconds),
        )


@lru_cache(maxsize=1)
def get_cdc_settings() -> CdcSettings:
    """Read and validate the CDC_* environment once; raise InvalidInput naming the bad variable."""
    raw = {field: os.environ[key] for key, field in _FIELDS.items() if os.environ.get(key)}
    try:
        return CdcSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0])
        key = next((k for k, f in _FIELDS.items() if f == field), field)
        raise InvalidInput(f"environment setting '{key}' is invalid: {first['msg']}", field=key) from exc

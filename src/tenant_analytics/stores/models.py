"""The model project every store keeps current: the packaged model files, parsed once per process."""

from __future__ import annotations

from functools import cache

from tenant_analytics.models import ModelProject, load_project


@cache
def packaged_models() -> ModelProject:
    """The models shipped in the package (``tenant_analytics/models/sql``), in dependency order."""
    return load_project()

"""Synthesize the whole CDK app once per test session into a temp dir; every test reads that one result."""

from __future__ import annotations

import pytest

from .synthesis import SynthResult, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """The cloud assembly of one `python app.py` run."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))

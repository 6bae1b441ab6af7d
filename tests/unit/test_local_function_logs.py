"""The local runner's function logs: what a function writes goes to its log file, as on AWS to CloudWatch Logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tenant_analytics.local.aws import _set_log_dir, invoke_handler

HANDLER = """
from aws_lambda_powertools import Logger

logger = Logger(service="{service}")  # bound to sys.stdout now, when the module is imported


def lambda_handler(event, context):
    logger.warning("model refreshed in full", reason=event["reason"])
    return {{"ok": True}}
"""


def test_a_functions_powertools_logs_go_to_its_log_file_not_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a handler module whose Powertools logger is created when it is first imported, outside any invoke
    service = f"logs_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{service}.py").write_text(HANDLER.format(service=service))
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = _set_log_dir(tmp_path / "logs")
    try:
        # When it is invoked twice (the second time from the module already imported)
        results = [invoke_handler(f"{service}.lambda_handler", "refresh", {"reason": r}) for r in ("first", "again")]
    finally:
        _set_log_dir(previous)
        sys.modules.pop(service, None)

    # Then it answered, the console stayed clean and both warnings are in the function's log
    assert results == [('{"ok": true}', False)] * 2
    assert "model refreshed in full" not in capsys.readouterr().out
    logged = [json.loads(line) for line in (tmp_path / "logs" / "refresh.log").read_text().splitlines()]
    assert [(entry["message"], entry["reason"]) for entry in logged] == [
        ("model refreshed in full", "first"),
        ("model refreshed in full", "again"),
    ]

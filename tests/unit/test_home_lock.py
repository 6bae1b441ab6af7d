"""The local home's lock: readers share it, a command that saves state has it alone, conflicts fail at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.local.home_lock import hold_home


def test_readers_share_the_home(tmp_path: Path) -> None:
    # Given a reader holding the home (serve); When another reader comes (token); Then both hold it
    with (
        hold_home(tmp_path, exclusive=False, holder="pid 1 (tenant-analytics serve)"),
        hold_home(tmp_path, exclusive=False, holder="pid 2 (tenant-analytics token)"),
    ):
        pass


def test_a_command_that_saves_state_is_refused_while_a_reader_runs_naming_it(tmp_path: Path) -> None:
    serve = f"pid {os.getpid()} (tenant-analytics serve)"
    # a reader that has ended left its line behind (no process has that pid)
    with hold_home(tmp_path, exclusive=False, holder="pid 999999999 (tenant-analytics token)"):
        pass
    with (tmp_path / "state.lock").open("a") as lock_file:
        lock_file.write("pid 999999998 (cut short")  # and one died while writing its line
    with (
        hold_home(tmp_path, exclusive=False, holder=serve),
        pytest.raises(InvalidInput) as refused,
        hold_home(tmp_path, exclusive=True),
    ):
        pytest.fail("the home was held twice")
    assert f"in use by {serve};" in refused.value.message  # the running reader only
    assert "stop it first, or set TENANT_ANALYTICS_HOME" in refused.value.message
    # and once the reader has ended, the home is free
    with hold_home(tmp_path, exclusive=True):
        pass


def test_a_reader_is_refused_while_the_state_is_being_changed(tmp_path: Path) -> None:
    with (
        hold_home(tmp_path, exclusive=True, holder="tenant-analytics run-hour"),
        pytest.raises(InvalidInput, match=r"being changed by tenant-analytics run-hour:"),
        hold_home(tmp_path, exclusive=False),
    ):
        pytest.fail("a reader got in during a change")


def test_the_lock_holds_across_processes_and_goes_with_the_process(tmp_path: Path) -> None:
    # Given another process holding the home while it runs
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from tenant_analytics.local.home_lock import hold_home
        with hold_home(Path({str(tmp_path)!r}), exclusive=True):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    other = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        # When this process asks for it; Then it is refused, naming the other
        with (
            pytest.raises(InvalidInput, match=rf"in use by pid {other.pid} \(-c\);"),
            hold_home(tmp_path, exclusive=True),
        ):
            pytest.fail("the home was held by two processes")
    finally:
        other.communicate("\n", timeout=30)
    # and once that process has ended the home is free
    with hold_home(tmp_path, exclusive=True):
        pass

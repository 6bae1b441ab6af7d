"""Who may use a local home at once.

The local account (moto) lives in the memory of the process that runs a command: each command restores the
saved state (registry, cursors, buckets) from the home when it starts, and a command that changes it saves it
back when it ends. Two commands that both save would overwrite each other's changes, and a long-running reader
(``serve``) would never see a change saved after it started. So a command that changes the state holds the home
exclusively, readers hold it shared, and a command that cannot have the home fails at once, naming the process
that has it, rather than waiting or losing work.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tenant_analytics.errors import InvalidInput

LOCK_FILE = "state.lock"


def describe_process() -> str:
    """This process as the lock file names it: pid and command line."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    return f"pid {os.getpid()} ({command})"


def _alive(line: str) -> bool:
    """Whether the holder a lock-file line names (``pid N (...)``) is still running; True if it names no pid."""
    words = line.split()
    if len(words) < 2 or words[0] != "pid" or not words[1].isdigit():
        return True
    try:
        os.kill(int(words[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # running, as another user
    return True


@contextmanager
def hold_home(home: Path, *, exclusive: bool, holder: str | None = None) -> Iterator[None]:
    """Hold ``home`` for the duration of the block: ``exclusive`` to change its saved state, else shared to read it.

    Raises InvalidInput, naming the holders, when another process holds it in a conflicting way. The lock goes
    with the process, so a command that crashed never leaves the home locked.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            # Readers add a line each and leave it behind; those whose process has ended are not named.
            holders = [line.strip() for line in handle if line.strip() and _alive(line)]
            other = " and ".join(dict.fromkeys(holders)) or "another process"
            if exclusive:
                raise InvalidInput(
                    f"the local platform under {home} is in use by {other}; this command changes its saved state "
                    "(tenants, cursors, buckets), which that process holds in memory and would overwrite or never "
                    "see: stop it first, or set TENANT_ANALYTICS_HOME to another folder"
                ) from None
            raise InvalidInput(
                f"the local platform under {home} is being changed by {other}: run this command when it has ended"
            ) from None
        if exclusive:  # alone: the lines of earlier holders have all ended
            handle.truncate(0)
        elif handle.seek(0, os.SEEK_END) > 0:
            handle.seek(handle.tell() - 1)
            if handle.read(1) != "\n":  # a line left unfinished (a holder that died while writing it)
                handle.write("\n")
        handle.write(f"{holder or describe_process()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""Who owns a piece of machine-wide state (an address lease, a slot mount): a pid plus its start time.

A pid alone is not an identity: after a server is SIGKILLed its pid may be reused by any process,
and state it names would then look owned forever. The start time (clock ticks since boot, field 22
of ``/proc/<pid>/stat``) tells the original process from a later one with the same pid.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["alive", "me"]


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def me() -> str:
    """This process as an owner: ``<pid>.<start time>`` (no ``-`` or space, so it fits in names)."""
    pid = os.getpid()
    return f"{pid}.{_start_time(pid)}"


def alive(owner: str) -> bool:
    """Whether the process ``owner`` (from :func:`me`, or a bare pid written by older versions) still runs.

    Anything unreadable counts as alive: state is only ever reclaimed from owners known to be gone.
    """
    pid_text, _, start_text = owner.partition(".")
    if not pid_text.isdigit():
        return True
    start = _start_time(int(pid_text))
    if start is None:
        return False
    return not start_text.isdigit() or int(start_text) == start

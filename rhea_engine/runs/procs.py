"""Is a recorded worker process still alive? (local pids, guarded against pid reuse)."""

from __future__ import annotations

import os
import socket
import time
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def this_host() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time in unix seconds) from /proc, or None without /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("X", None)  # no such process
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = raw[raw.rfind(")") + 2 :].split()
    state = rest[0]
    boot = _boot_time()
    started = None
    if boot is not None:
        try:
            started = boot + int(rest[19]) / os.sysconf("SC_CLK_TCK")
        except (IndexError, ValueError, OSError):
            started = None
    return (state, started)


def pid_alive(pid: int | None, not_after: float | None = None) -> bool:
    """True if process `pid` runs on this host (zombies count as gone).

    `not_after`: the time the process is known to have existed by (its start event); a
    process with that pid that started clearly later is a different one (pid reuse).
    """
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X", "x"):
        return False
    if not_after is not None and started is not None and started > not_after + 2.0:
        return False
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until `pid` is gone or `timeout` seconds pass; True if gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)

"""Is a recorded worker process still alive? (local pids, guarded against pid reuse)."""

from __future__ import annotations

import socket
from functools import lru_cache

# a process that started this much after the run recorded it is another one (pid reuse);
# the margin covers the clock granularity of process start times
PID_REUSE_MARGIN_S = 2.0


@lru_cache(maxsize=1)
def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int | None, not_after: float | None = None) -> bool:
    """True if process `pid` runs on this host (zombies count as gone).

    `not_after`: the time the process is known to have existed by (its start event); a
    process with that pid that started clearly later is a different one (pid reuse).
    """
    if not pid or pid <= 0:
        return False
    import psutil  # only when a local worker is watched: keeps `rhea ls` quick to start

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = process.create_time()
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True  # exists, owned by someone else
    return not (not_after is not None and started > not_after + PID_REUSE_MARGIN_S)

"""Run liveness and lost-run detection; Slurm jobs go through `rhea_engine.runs.slurm` hooks.

A run is settled as lost when its worker is gone and its events hold no final status:
- a local worker (same host, no Slurm job): as soon as its pid is gone. Liveness is checked
  before the events are read, so a worker that wrote its final status and exited in
  between is seen with that status, never as lost;
- a Slurm run: when the job is gone (per the slurm hook) and the heartbeat is stale;
- a worker on another host without Slurm: when the heartbeat is stale.
Stale means older than max(LOST_AFTER_S, 3 x heartbeat_seconds). A worker that died before
it wrote its start event (an import error, say) is settled as failed with the tail of
stdout.log, which holds the reason.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from rhea_engine.runs.procs import pid_alive, this_host
from rhea_engine.runs.rows import RunRow
from rhea_engine.runs.rundir import STDOUT_FILE
from rhea_engine.vocabulary import ACTIVE_STATUSES

LOST_AFTER_S = 30.0


def slurm_hook(name: str) -> Callable[..., Any] | None:
    """`rhea_engine.runs.slurm.<name>` if that module provides it (job_alive, cancel)."""
    try:
        module = importlib.import_module("rhea_engine.runs.slurm")
    except ImportError:
        return None
    hook = getattr(module, name, None)
    return hook if callable(hook) else None


def is_local(row: RunRow) -> bool:
    return not row.slurm_job_id and (row.host is None or row.host == this_host())


def process_alive(row: RunRow) -> bool | None:
    """True/False when the worker's liveness can be told from here, None when it cannot."""
    if row.slurm_job_id:
        hook = slurm_hook("job_alive")
        if hook is None:
            return None
        try:
            alive = hook(row.slurm_job_id)
        except Exception:  # a Slurm hiccup must not break a front end's refresh
            return None
        return None if alive is None else bool(alive)
    if row.pid and is_local(row):
        known_by = max(
            t for t in (row.started, row.status_set_at, row.created, 0.0) if t is not None
        )
        return pid_alive(row.pid, not_after=known_by)
    return None


def stale_after(row: RunRow) -> float:
    try:
        beat = float(row.config.get("heartbeat_seconds", 5.0))
    except (TypeError, ValueError):
        beat = 5.0
    return max(LOST_AFTER_S, 3.0 * beat)


def verdict(
    row: RunRow, gone: bool | None, now: float | None = None
) -> tuple[str, str, str | None] | None:
    """(status, error, traceback) for a run whose worker is gone without a final status."""
    if row.status not in ACTIVE_STATUSES or not (row.pid or row.slurm_job_id):
        return None
    now = time.time() if now is None else now
    last_sign = max(
        t
        for t in (row.heartbeat, row.started, row.status_set_at, row.created, 0.0)
        if t is not None
    )
    age = now - last_sign
    stale = age > stale_after(row)
    if row.pid and is_local(row):
        if not gone:
            return None
    elif row.slurm_job_id:
        if not (gone and stale):
            return None
    elif not stale:
        return None
    if row.started is None:
        tail = _stdout_tail(row)
        return (
            "failed",
            f"The worker of run '{row.name}' exited before it started training; the reason is "
            f"in its output ({row.path / STDOUT_FILE if row.path else STDOUT_FILE}), last lines below.",
            tail,
        )
    where = (
        f"job {row.slurm_job_id}"
        if row.slurm_job_id
        else f"pid {row.pid} on {row.host or this_host()}"
    )
    return (
        "lost",
        f"The worker of run '{row.name}' ({where}) is gone without a final status; its last "
        f"sign of life was {age:.0f} s ago. Continue it from its last checkpoint with "
        f"`rhea resume {row.name}`.",
        None,
    )


def _stdout_tail(row: RunRow, lines: int = 30) -> str | None:
    if row.path is None:
        return None
    try:
        text = (row.path / STDOUT_FILE).read_text(errors="replace")
    except OSError:
        return None
    return "\n".join(text.splitlines()[-lines:]) or None

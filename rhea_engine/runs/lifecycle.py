"""Run liveness and the verdict on a run whose worker is gone without a final status.

A worker is gone when:
- a local worker (same host, no Slurm job): its pid is gone. Liveness is checked before
  the events are read, so a worker that wrote its final status and exited in between is
  seen with that status, never as gone;
- a Slurm run: the job is gone (`rhea_engine.runs.slurm.job_alive`) and the heartbeat is
  stale;
- a worker on another host without Slurm: the heartbeat is stale.
Stale means older than max(LOST_AFTER_S, 3 x heartbeat_seconds).

The verdict: `failed` when the worker's output (stdout.log) shows an error (a traceback, an
import error: it died of its own failure, and the output says why), else `lost`, whenever it
happened (before the first epoch too: the OOM killer during data loading is the usual
case), with what is known: pid, host or job, the last sign of life, the output's last lines.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from rhea_engine.runs.procs import pid_alive, this_host
from rhea_engine.runs.rows import RunRow
from rhea_engine.runs.rundir import LAUNCH_MARK, STDOUT_FILE
from rhea_engine.vocabulary import ACTIVE_STATUSES

LOST_AFTER_S = 30.0
TAIL_LINES = 30
# what Python and the worker print when they die of an error of their own
_ERROR_RE = re.compile(
    r"^Traceback \(most recent call last\):|^Fatal Python error|^\w*(Error|Exception)\b.*:|"
    r": error: ",
    re.MULTILINE,
)


def is_local(row: RunRow) -> bool:
    return not row.slurm_job_id and (row.host is None or row.host == this_host())


def process_alive(row: RunRow) -> bool | None:
    """True/False when the worker's liveness can be told from here, None when it cannot."""
    if row.slurm_job_id:
        from rhea_engine.runs import slurm  # submitit loads only where Slurm runs exist

        try:
            alive = slurm.job_alive(row.slurm_job_id)
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


def _last_sign(row: RunRow) -> tuple[float, str]:
    """(time, what) of the last sign of life: a heartbeat or event, the start, the launch."""
    signs = [
        (row.heartbeat, "its last event"),
        (row.started, "its start"),
        (row.status_set_at, "its launch"),
        (row.created, "the run's creation"),
    ]
    return max(((t, what) for t, what in signs if t is not None), default=(0.0, "nothing"))


def verdict(
    row: RunRow, gone: bool | None, now: float | None = None
) -> tuple[str, str, str | None] | None:
    """(status, error, output tail) for a run whose worker is gone without a final status."""
    if row.status not in ACTIVE_STATUSES or not (row.pid or row.slurm_job_id):
        return None
    now = time.time() if now is None else now
    last, what = _last_sign(row)
    stale = now - last > stale_after(row)
    if row.pid and is_local(row):
        if not gone:
            return None
    elif row.slurm_job_id:
        if not (gone and stale):
            return None
    elif not stale:
        return None
    tail = output_tail(row)
    output = row.path / STDOUT_FILE if row.path else STDOUT_FILE
    when = "before its first epoch" if row.last_epoch is None else f"after epoch {row.last_epoch}"
    if tail is not None and _ERROR_RE.search(tail):
        return (
            "failed",
            f"The worker of run '{row.name}' exited {when} without a final status; the reason "
            f"is in its output ({output}), last lines below.",
            tail,
        )
    where = f"Slurm job {row.slurm_job_id}" if row.slurm_job_id else f"pid {row.pid}"
    host = f" on {row.host or this_host()}" if not row.slurm_job_id else ""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last))
    output_note = "its output ends as below" if tail else f"its output ({output}) is empty"
    if row.path is not None and _logged_by_a_script(row.path):
        advice = "run the script again (Rhea cannot resume a run that a script logged)"
    elif row.last_epoch is None:
        advice = f"start it again with `rhea resume {row.name} --from-scratch`"
    else:
        advice = f"continue it from its last checkpoint with `rhea resume {row.name}`"
    return (
        "lost",
        f"The worker of run '{row.name}' ({where}{host}) is gone {when}, without a final "
        "status and without an error of its own: it was killed from outside (the OOM killer, "
        f"kill -9, a node failure). Its last sign of life was {what} at {stamp} "
        f"({max(0.0, now - last):.0f} s before this check); {output_note}. To go on, {advice}.",
        tail,
    )


def _logged_by_a_script(path: Path) -> bool:
    from rhea_engine.tracking import is_script_run  # the tracking API imports the run writer

    return is_script_run(path)


def output_tail(row: RunRow, lines: int = TAIL_LINES) -> str | None:
    """The last lines the latest launch of a run's worker wrote to stdout.log, or None."""
    if row.path is None:
        return None
    try:
        text = (row.path / STDOUT_FILE).read_text(errors="replace")
    except OSError:
        return None
    text = text.rsplit(LAUNCH_MARK, 1)[-1].split("\n", 1)[-1] if LAUNCH_MARK in text else text
    return "\n".join(text.splitlines()[-lines:]) or None

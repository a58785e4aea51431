"""Slurm: submit runs as jobs (submitit), poll their states in batches, map them onto statuses.

Each job runs the training worker for one run directory on the shared file system; the
worker writes events.jsonl there as it would locally. Front ends poll Slurm with one
`squeue` call for all tracked jobs (plus one `sacct` for jobs squeue no longer knows),
at most once every POLL_INTERVAL_S seconds; between polls the cached answer is used.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from rhea_engine.errors import SlurmError
from rhea_engine.runs import cores
from rhea_engine.runs.rundir import open_output
from rhea_engine.vocabulary import ACTIVE_STATUSES

POLL_INTERVAL_S = 10.0
QUERY_TIMEOUT_S = 30.0
# how long after its end a stopped/failed Slurm run is still checked for a Slurm reason
REASON_WINDOW_S = 24 * 3600.0
_TIME_RE = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$|^(\d+)$")

ACTIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "RUNNING",
    "COMPLETING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
}
QUEUED_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
}
# worker/front-end verdicts Slurm never overrides
_KEEP = ("completed", "failed", "diverged", "pruned")
# ended jobs whose state carries a reason (see map_state)
_REASONED = {
    "CANCELLED",
    "TIMEOUT",
    "PREEMPTED",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "FAILED",
    "NODE_FAIL",
    "BOOT_FAIL",
}


@dataclass(frozen=True)
class JobState:
    """One job as Slurm reports it."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...
    reason: str = ""
    exit_code: str = ""
    at: float = 0.0  # when Slurm was asked (unix seconds)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how long each run of a sweep runs on Slurm."""

    partition: str
    time: str  # HH:MM:SS (or D-HH:MM:SS, MM:SS, minutes)
    gpus_per_run: int = 1
    account: str | None = None
    cpus_per_run: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "time": self.time,
            "gpus_per_run": self.gpus_per_run,
            "account": self.account,
            "cpus_per_run": self.cpus_per_run,
        }


def available() -> bool:
    return shutil.which("sbatch") is not None and shutil.which("squeue") is not None


def parse_time(text: str) -> int:
    """A Slurm time limit (HH:MM:SS, D-HH:MM:SS, MM:SS or minutes) in whole minutes, rounded up."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise SlurmError(
            f"--time '{text}' is not a time limit; use HH:MM:SS, for example 02:00:00."
        )
    if match.group(5) is not None:
        minutes = float(match.group(5))
    else:
        days, hours, mins, secs = (int(g) if g else 0 for g in match.group(1, 2, 3, 4))
        if secs >= 60 or (match.group(2) and mins >= 60):
            raise SlurmError(f"--time '{text}': minutes and seconds must be below 60.")
        minutes = days * 1440 + hours * 60 + mins + secs / 60
    if minutes <= 0:
        raise SlurmError(f"--time '{text}' must be longer than zero.")
    return int(math.ceil(minutes))


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise SlurmError(f"'{cmd[0]}' was not found: is Slurm installed on this machine?") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"'{' '.join(cmd[:2])}' did not answer within {QUERY_TIMEOUT_S:.0f} s."
        ) from None


def check_partition(partition: str, gpus_per_run: int = 0) -> None:
    """Fail early (before anything is written) if Slurm does not know `partition`, or it
    has no GPUs (gres) while GPUs are asked for."""
    if not available():
        raise SlurmError(
            "Slurm's sbatch and squeue were not found on this machine; run the sweep "
            "on a Slurm login node, or drop --slurm to run it locally."
        )
    result = _run(["sinfo", "-h", "-o", "%R", "-p", partition])
    names = {line.strip() for line in result.stdout.splitlines()}
    if result.returncode != 0 or partition not in names:
        known = _run(["sinfo", "-h", "-o", "%R"]).stdout.split()
        raise SlurmError(
            f"Slurm has no partition '{partition}'. Known partitions: "
            f"{', '.join(sorted(set(known))) or 'none'}."
        )
    if gpus_per_run > 0:
        gres = _run(["sinfo", "-h", "-p", partition, "-o", "%G"]).stdout
        if "gpu" not in gres.lower():
            raise SlurmError(
                f"Slurm partition '{partition}' has no GPUs (no gpu gres), but --gpus-per-run is "
                f"{gpus_per_run}; choose a GPU partition, or give --gpus-per-run 0 for CPU jobs."
            )


# --- the job ---------------------------------------------------------------------------


def _ignore_usr2() -> None:
    # Slurm's advance warning (USR2) is for the job process, which stops the worker
    # cleanly; the worker itself must not die of it.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


class WorkerJob(Checkpointable):  # type: ignore[misc]
    """The Slurm job: runs `python -m rhea_engine.runs.worker RUN_DIR` and waits for it.

    On time-out or preemption (submitit's USR2) the worker is stopped with SIGTERM so it
    writes a checkpoint, and the job is requeued to resume from it.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def __call__(self, run_dir: str, resume: bool = False) -> int:
        cmd = [sys.executable, "-m", "rhea_engine.runs.worker", run_dir]
        if resume:
            cmd.append("--resume")
        # one thread per CPU of the allocation (--cpus-per-task), waiting passively
        env = {**os.environ, **cores.slurm_worker_env(), "PYTHONUNBUFFERED": "1"}
        with open_output(Path(run_dir)) as log:
            self._proc = subprocess.Popen(  # noqa: S603 (fixed command, run_dir is ours)
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_ignore_usr2
            )
        # poll rather than wait(): submitit's USR2 handler (checkpoint below) runs in this
        # thread and must be able to wait for the worker itself
        while self._proc.poll() is None:
            time.sleep(0.5)
        return self._proc.returncode

    def checkpoint(self, run_dir: str, resume: bool = False) -> Any:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=75)
            except subprocess.TimeoutExpired:
                proc.kill()
        return DelayedSubmission(WorkerJob(), run_dir, resume=True)


def submit(
    home: str | Path,
    run_dir: str | Path,
    options: SlurmOptions,
    job_name: str,
    resume: bool = False,
) -> str:
    """Submit one run as a Slurm job; returns the job id."""
    import submitit

    folder = Path(home) / "slurm" / "%j"
    executor = submitit.SlurmExecutor(folder=folder, python=sys.executable, max_num_timeout=3)
    minutes = parse_time(options.time)
    params: dict[str, Any] = {
        "partition": options.partition,
        "time": minutes,
        "job_name": job_name,
        "setup": ["export OMP_NUM_THREADS=1"],
        "stderr_to_stdout": True,
        # USR2 this long before the limit: time to stop the worker with a checkpoint
        "signal_delay_s": min(90, max(15, minutes * 15)),
    }
    if options.gpus_per_run:
        params["gpus_per_node"] = options.gpus_per_run
    if options.account:
        params["account"] = options.account
    if options.cpus_per_run:
        params["cpus_per_task"] = options.cpus_per_run
    executor.update_parameters(**params)
    try:
        job = executor.submit(WorkerJob(), str(run_dir), resume)
    except Exception as exc:  # sbatch refused (bad account, gres, limits): say why
        detail = getattr(exc, "stderr", None) or getattr(exc, "output", None) or str(exc)
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise SlurmError(f"Slurm refused the job for {job_name}: {str(detail).strip()}") from None
    _poller.track([str(job.job_id)])
    _poller.invalidate()
    return str(job.job_id)


def options_for(store: Any, handle: str) -> SlurmOptions | None:
    """The Slurm options a run was submitted with (from its sweep's spec), or None."""
    row = store.get_run(handle)
    for entry in store.sweeps() if row.sweep else []:
        if entry["name"] == row.sweep:
            found = (entry.get("spec") or {}).get("run", {}).get("slurm")
            return SlurmOptions(**found) if found else None
    return None


def resubmit(store: Any, handle: str, options: SlurmOptions | None = None) -> str:
    """Submit a Slurm run again to continue from its last checkpoint (`rhea resume`)."""
    row = store.get_run(handle)
    if row.slurm_job_id:
        # asked afresh, not from the poll cache: after a time limit or preemption the worker
        # stops (its run reads "stopped") a moment before the job requeues itself, and a job
        # still ending would run beside the new one
        job = query_states([str(row.slurm_job_id)]).get(str(row.slurm_job_id))
        if job is not None and job.active:
            why = f", {job.reason}" if job.reason and job.reason != "None" else ""
            raise SlurmError(
                f"Run '{row.name}' still has Slurm job {job.job_id} ({job.state}{why}), so a "
                "second job is not submitted. A job requeued after a time limit or preemption "
                "continues from the last checkpoint by itself when Slurm starts it again; "
                f"otherwise wait until it has ended, or cancel it (`scancel {job.job_id}`), and "
                "resume then."
            )
    options = options or options_for(store, handle)
    if options is None:
        raise SlurmError(
            f"Run '{row.name}' has no recorded Slurm options (partition, time); "
            "it was not started by `rhea sweep --slurm`."
        )
    job_id = submit(store.home, row.path, options, row.name, resume=True)
    store.set_status(row.name, "queued", slurm_job_id=job_id)
    return job_id


def cancel(job_id: str) -> None:
    """scancel: Slurm sends SIGTERM, the worker checkpoints and ends as stopped."""
    result = _run(["scancel", str(job_id)])
    if result.returncode != 0:
        raise SlurmError(f"scancel {job_id} failed: {(result.stderr or result.stdout).strip()}")
    _poller.invalidate()


# --- polling ---------------------------------------------------------------------------


def _parse_lines(text: str, fields: int) -> list[list[str]]:
    return [line.split("|") for line in text.splitlines() if line.count("|") >= fields - 1]


def query_states(job_ids: list[str]) -> dict[str, JobState]:
    """One squeue call for all jobs, one sacct call for the ones squeue has forgotten."""
    if not job_ids:
        return {}
    states: dict[str, JobState] = {}
    now = time.time()
    result = _run(["squeue", "--states=all", "-h", "-o", "%i|%T|%r", "-j", ",".join(job_ids)])
    if result.returncode == 0:
        for job_id, state, reason in (p[:3] for p in _parse_lines(result.stdout, 3)):
            states[job_id.strip()] = JobState(
                job_id.strip(), state.strip().split()[0], reason.strip(), at=now
            )
    missing = [j for j in job_ids if j not in states]
    if missing and shutil.which("sacct"):
        fmt = ["-o", "JobID,State,ExitCode"]
        result = _run(["sacct", "-X", "-n", "-P", "-j", ",".join(missing), *fmt])
        if result.returncode != 0 or "disabled" in result.stderr + result.stdout:
            # no accounting database: the job-completion log still knows finished jobs
            result = _run(["sacct", "-c", "-n", "-P", "-j", ",".join(missing), *fmt])
        if result.returncode == 0:
            for job_id, state, code in (p[:3] for p in _parse_lines(result.stdout, 3)):
                job_id = job_id.strip()
                if job_id in missing:
                    states[job_id] = JobState(
                        job_id,
                        state.strip().split()[0] if state.strip() else "",
                        "",
                        code.strip(),
                        at=now,
                    )
    return states


class Poller:
    """Batched, rate-limited job states: one query for every tracked job per interval.

    A job not seen by the last query (just submitted, or first met) triggers an earlier
    query, but never more than one per NEW_JOB_GRACE_S, so a refresh that meets many new
    jobs still asks Slurm once.
    """

    NEW_JOB_GRACE_S = 1.0

    def __init__(self, interval: float = POLL_INTERVAL_S) -> None:
        self.interval = interval
        self._jobs: set[str] = set()
        self._queried: set[str] = set()
        self._states: dict[str, JobState] = {}
        self._at = -math.inf
        self._lock = threading.Lock()
        self.queries = 0  # how many times Slurm was asked (for tests and diagnostics)

    def track(self, job_ids: list[str]) -> None:
        with self._lock:
            self._jobs |= {str(j) for j in job_ids}

    def invalidate(self) -> None:
        with self._lock:
            self._at = -math.inf

    def known(self, job_id: str) -> bool:
        """Whether the last query asked about `job_id`."""
        return str(job_id) in self._queried

    def states(self, job_ids: list[str] | None = None, force: bool = False) -> dict[str, JobState]:
        if job_ids:
            self.track(job_ids)
        with self._lock:
            age = time.monotonic() - self._at
            unseen = bool(self._jobs - self._queried)
            if force or age >= self.interval or (unseen and age >= self.NEW_JOB_GRACE_S):
                jobs = sorted(self._jobs)
                try:
                    self._states = query_states(jobs)
                    self._queried = set(jobs)
                except SlurmError:
                    self._states, self._queried = {}, set()
                self._at = time.monotonic()
                self.queries += 1
            return dict(self._states)


_poller = Poller()


def job_alive(job_id: str) -> bool | None:
    """For run liveness (lifecycle): True while Slurm holds the job, False once it is gone.

    None ("cannot tell") where Slurm is unreachable, and for jobs that ended in a state
    with a reason of its own (CANCELLED, TIMEOUT, ...): `refresh_slurm_statuses` gives
    those their status with that reason rather than the generic "lost".
    """
    if not available():
        return None
    state = _poller.states([str(job_id)]).get(str(job_id))
    if state is None:
        return False if _poller.known(str(job_id)) else None
    if state.active:
        return True
    return None if state.state in _REASONED else False


def map_state(
    job: JobState, status: str, ended: float | None = None
) -> tuple[str, str | None] | None:
    """The (status, reason) a run with status `status` (ended at `ended`) takes from its job,
    or None to keep it."""
    state, jid = job.state, job.job_id
    if state in QUEUED_STATES:
        # submitit requeued it after a time-out or preemption; a state seen before the worker
        # stopped is only the cached answer from when the job was first pending
        if status == "stopped" and ended is not None and job.at > ended:
            return (
                "queued",
                f"Slurm job {jid} was requeued after its time limit or a preemption; it will "
                "continue from its last checkpoint.",
            )
        return None
    if state in ("RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"):
        return ("running", None) if status == "queued" else None
    if state == "COMPLETED" or status in _KEEP:
        # a job that ended normally: the worker's own final status stands
        return None
    reasons = {
        "CANCELLED": (
            "stopped",
            f"Slurm job {jid} was cancelled (scancel by a user or an administrator).",
        ),
        "TIMEOUT": (
            "stopped",
            f"Slurm job {jid} reached its time limit (--time). Continue it from "
            "its last checkpoint with `rhea resume`.",
        ),
        "PREEMPTED": (
            "stopped",
            f"Slurm job {jid} was preempted. Continue it from its last "
            "checkpoint with `rhea resume`.",
        ),
        "DEADLINE": ("stopped", f"Slurm job {jid} reached its deadline."),
        "OUT_OF_MEMORY": (
            "failed",
            f"Slurm job {jid} ran out of memory; ask for more (or lower --batch-size).",
        ),
        "FAILED": (
            "failed",
            f"Slurm job {jid} failed (exit code {job.exit_code or 'unknown'}); "
            "the output is in the run's stdout.log and the home's slurm/ folder.",
        ),
        "NODE_FAIL": (
            "lost",
            f"The node of Slurm job {jid} failed. Continue the run with `rhea resume`.",
        ),
        "BOOT_FAIL": ("failed", f"The node of Slurm job {jid} failed to boot."),
    }
    return reasons.get(state)


def refresh_slurm_statuses(store: Any, force: bool = False) -> int:
    """Apply Slurm's job states to the store's Slurm runs; returns how many runs changed.

    `rhea_engine.runs.refresh` calls it after ingesting, so the workers' own events come first.
    """
    now = time.time()
    rows = [
        r
        for r in store.list_runs()
        if r.slurm_job_id
        and (
            r.status in ACTIVE_STATUSES
            or (
                r.status in ("stopped", "failed", "lost")
                and not r.error
                and (r.ended is None or now - r.ended < REASON_WINDOW_S)
            )
        )
    ]
    if not rows or not available():
        return 0
    states = _poller.states([str(r.slurm_job_id) for r in rows], force=force)
    changed = 0
    for row in rows:
        job = states.get(str(row.slurm_job_id))
        if job is None:
            continue
        verdict = map_state(job, row.status, row.ended)
        if verdict is None or (verdict[0] == row.status and verdict[1] == row.error):
            continue
        status, reason = verdict
        if status == "running":
            store.set_status(row.name, "running")
        else:
            store.set_status(row.name, status, error=reason)
        changed += 1
    return changed

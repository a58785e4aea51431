"""Start, follow and stop training workers (`python -m rhea_engine.runs.worker RUN_DIR`).

The worker runs in its own session, its stdout and stderr go to RUN_DIR/stdout.log, and it
talks back only through events.jsonl. A foreground launch follows those events and turns
Ctrl-C into SIGTERM, which the worker answers with a checkpoint and status `stopped`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rhea_engine.config import TrainConfig
from rhea_engine.errors import RunError
from rhea_engine.runs import cores, lifecycle
from rhea_engine.runs.procs import pid_alive, this_host
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import open_output, read_events
from rhea_engine.runs.store import RunRow, Store
from rhea_engine.tracking import is_script_run
from rhea_engine.vocabulary import ACTIVE_STATUSES

WORKER_MODULE = "rhea_engine.runs.worker"
INGEST_EVERY_S = 1.0


def worker_command(row: RunRow, resume: bool = False) -> list[str]:
    command = [sys.executable, "-m", WORKER_MODULE, str(row.path)]
    return command + ["--resume"] if resume else command


def start_worker(
    store: Store,
    handle: str,
    *,
    resume: bool = False,
    env: Mapping[str, str] | None = None,
    cpus: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start the worker of run `handle` in its own session and record its pid.

    A CPU worker gets its share of the first `cpus` usable cores (all by default), shared
    with the home's other running CPU workers (`rhea_engine.runs.cores`); `env` wins over
    the thread variables of that share.
    """
    row = store.get_run(handle)
    assert row.path is not None
    cores.cpu_pool(cpus)  # a --cpus this machine cannot give fails before anything changes
    # the status is set before the process exists, so the pid-reuse guard accepts it
    store.set_status(row.name, "running", host=this_host(), pid=None, slurm_job_id=None)
    offset = events_size(row)  # events of earlier launches (a resume) are not followed
    try:
        with (
            cores.worker_share(store.home, row.config, cpus, env) as share,
            open_output(row.path) as log,
        ):
            process = subprocess.Popen(
                worker_command(row, resume),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **share.env, **(env or {})},
                cwd=store.home,
                start_new_session=True,
            )
            share.started(process.pid)
    except OSError as exc:
        store.set_status(row.name, "failed", error=f"The worker could not be started: {exc}.")
        raise RunError(f"The worker of run '{row.name}' could not be started: {exc}.") from exc
    store.update_run(row.name, pid=process.pid)
    process.events_offset = offset  # type: ignore[attr-defined]  # where `follow` starts
    return process


def check_name_free(store: Store, name: str | None) -> None:
    """RunError if a run of that name exists already (None: a handle is allocated)."""
    if name is not None and any(r.name == name for r in store.list_runs()):
        raise RunError(f"A run named '{name}' already exists; choose another name.")


def launch_new_run(
    store: Store,
    config: TrainConfig,
    name: str | None,
    data: tuple[list[str], list[str]],
    progress: Callable[[str, float], None] | None = None,
    tags: Sequence[str] = (),
    cpus: int | None = None,
) -> tuple[RunRow, subprocess.Popen[bytes]]:
    """Create a run (with `tags`) and start its worker: the one path of `rhea run` and the
    TUI's form.

    `data` comes from `preflight.check_new_run`; empty lists mean the default synthetic
    data set of this home, generated on first use. The run's name must still be free.
    `cpus`: the cores local runs may share (`--cpus`; default: all usable ones).
    """
    from rhea_engine.runs import defaults

    check_name_free(store, name)
    asymptotic, stable = data
    if not asymptotic and not stable:
        asymptotic, stable, _ = defaults.default_data(store.home, progress=progress)
    config = config.replace(database_list=asymptotic, stable_database_list=stable)
    cores.cpu_pool(cpus)  # a --cpus this machine cannot give fails before the run exists
    row = store.create_run(config.to_dict(), name=name, status="queued", tags=tuple(tags))
    return row, start_worker(store, row.name, cpus=cpus)


def resume_run(
    store: Store,
    handle: str,
    env: Mapping[str, str] | None = None,
    from_scratch: bool = False,
) -> subprocess.Popen[bytes] | None:
    """Continue a finished run from its last checkpoint: a local worker (returned) or, for a
    Slurm run, a new job through `rhea_engine.runs.slurm.resubmit` (None is returned).

    `from_scratch`: start it again from epoch 0 instead, its history voided (see `restart`).
    """
    from rhea_engine.runs import restart

    refresh(store, [handle])
    row = store.get_run(handle)
    if row.status in ACTIVE_STATUSES:
        raise RunError(
            f"Run '{row.name}' is {row.status}; only a stopped, lost, failed or diverged run "
            "can be resumed."
        )
    if row.status == "completed":
        raise RunError(
            f"Run '{row.name}' completed all its epochs; start a new run to train longer."
        )
    if row.path is not None and is_script_run(row.path):
        raise RunError(
            f"Run '{row.name}' was logged by a script through rhea_engine.tracking, so Rhea "
            "cannot continue it; run the script again (under a new run name)."
        )
    restart.prepare(store, row, from_scratch)
    if row.slurm_job_id:
        from rhea_engine.runs import slurm

        slurm.resubmit(store, row.name)
        return None
    return start_worker(store, row.name, resume=not from_scratch, env=env)


def follow(
    store: Store,
    handle: str,
    process: subprocess.Popen[bytes],
    on_event: Callable[[dict[str, Any]], None],
    poll_s: float = 0.2,
) -> RunRow:
    """Pass each new event to `on_event` until the worker exits; returns the final row."""
    row = store.get_run(handle)
    offset = getattr(process, "events_offset", None)
    if offset is None:
        offset = events_size(row)
    last_ingest = 0.0
    while True:
        finished = process.poll() is not None
        chunk = read_events(row.path, offset)  # type: ignore[arg-type]
        offset = chunk.end_offset
        for event in chunk.events:
            on_event(event)
        now = time.monotonic()
        if finished or now - last_ingest > INGEST_EVERY_S:
            refresh(store, [row.name])
            last_ingest = now
        if finished:
            cores.rebalance(store.home)  # the runs still going take over its cores
            return store.get_run(row.name)
        time.sleep(poll_s)


def events_size(row: RunRow) -> int:
    """The current length of a run's events.jsonl (0 before it exists)."""
    try:
        return (row.path / "events.jsonl").stat().st_size  # type: ignore[operator]
    except OSError:
        return 0


@contextmanager
def forward_interrupts(
    process: subprocess.Popen[bytes], on_forward: Callable[[int], None]
) -> Iterator[None]:
    """While following a worker, Ctrl-C (and SIGTERM/SIGHUP) become a SIGTERM to it."""
    count = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal count
        count += 1
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        on_forward(count)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            break
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_run(store: Store, row: RunRow) -> str:
    """Ask a run's worker to stop (SIGTERM, or the Slurm hook); returns what was done."""
    if row.status not in ACTIVE_STATUSES:
        raise RunError(f"Run '{row.name}' is not running (it is {row.status}); nothing to stop.")
    if row.slurm_job_id:
        from rhea_engine.runs import slurm

        slurm.cancel(row.slurm_job_id)
        return f"cancelled Slurm job {row.slurm_job_id}"
    if row.status == "queued" and not row.pid:
        store.set_status(row.name, "stopped", error="Stopped before it started.")
        return "stopped before it started"
    if not lifecycle.is_local(row):
        raise RunError(
            f"Run '{row.name}' runs on host {row.host}; stop it there (`rhea stop {row.name}`) "
            f"or send SIGTERM to pid {row.pid} on that host."
        )
    if not row.pid or not pid_alive(row.pid):
        refresh(store, [row.name])  # settles it as lost (or shows the final status)
        return "its worker was already gone"
    os.kill(row.pid, signal.SIGTERM)
    return f"sent SIGTERM to pid {row.pid}"


def wait_final(store: Store, handle: str, timeout_s: float, poll_s: float = 0.2) -> RunRow:
    """Ingest until the run has a final status or `timeout_s` passes; returns the row."""
    deadline = time.monotonic() + timeout_s
    while True:
        refresh(store, [handle])
        row = store.get_run(handle)
        if row.is_final or time.monotonic() > deadline:
            return row
        time.sleep(poll_s)

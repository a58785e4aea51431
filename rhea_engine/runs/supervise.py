"""Supervise a sweep: keep N trials going (local workers or Slurm jobs), prune, keep to a budget.

The supervisor is a front end: it owns runs.db like the CLI does, launches workers through
`rhea_engine.runs.launch` (or submits Slurm jobs), follows each trial's epochs for its
search (`rhea_engine.sweep.trials`), and ends when every trial has a final status and no
more are to be asked. One supervisor drives a sweep at a time (a lock in the sweep's
folder). `python -m rhea_engine.runs.supervise HOME SWEEP` runs it in the background
(`rhea sweep --detach`); its options are read from the sweep's stored spec.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine.errors import RheaError, SweepError
from rhea_engine.runs import cores, launch, slurm
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.store import RunRow, Store
from rhea_engine.sweep.budget import Budget
from rhea_engine.sweep.search import sweep_folder
from rhea_engine.sweep.trials import SweepTrials, sweep_entry
from rhea_engine.vocabulary import ACTIVE_STATUSES

SUPERVISOR_LOG = "supervisor.log"
LOCK_FILE = "supervisor.lock"
OWNER_FILE = "supervisor.owner"


@dataclass
class SweepOptions:
    """How a sweep's trials are run (stored in the sweep's spec under "run")."""

    parallel: int = 1
    gpus: list[str] = field(default_factory=list)
    pruning: dict[str, Any] | None = None  # {"kind": asha|hyperband, "min_epochs", "eta"}
    slurm: slurm.SlurmOptions | None = None
    budget: Budget = field(default_factory=Budget)
    cpus: int | None = None  # --cpus: the cores local trials share (None: all usable ones)

    def to_dict(self) -> dict[str, Any]:
        return {
            "parallel": self.parallel,
            "gpus": self.gpus,
            "pruning": self.pruning,
            "slurm": self.slurm.to_dict() if self.slurm else None,
            "budget": self.budget.to_dict(),
            "cpus": self.cpus,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepOptions:
        pruning = data.get("pruning")
        if pruning is None and data.get("asha_min_epochs"):  # sweeps stored before pruners
            pruning = {
                "kind": "asha",
                "min_epochs": int(data["asha_min_epochs"]),
                "eta": int(data.get("asha_eta") or 3),
            }
        return cls(
            parallel=int(data.get("parallel") or 1),
            gpus=[str(g) for g in data.get("gpus") or []],
            pruning=pruning,
            slurm=slurm.SlurmOptions(**data["slurm"]) if data.get("slurm") else None,
            budget=Budget.from_dict(data.get("budget")),
            cpus=data.get("cpus"),
        )


@contextmanager
def sweep_lock(home: Path, sweep: str) -> Iterator[None]:
    """Hold the sweep's lock while supervising it; SweepError if another front end holds it."""
    from filelock import FileLock, Timeout

    folder = sweep_folder(home, sweep)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            owner = (folder / OWNER_FILE).read_text().strip()
        except OSError:
            owner = "another process"
        raise SweepError(
            f"Sweep '{sweep}' is already supervised by {owner}. Two front ends never drive one "
            f"sweep; follow it with `rhea ls --sweep {sweep}` or `rhea tui`, or stop that "
            "supervisor first."
        ) from None
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        (folder / OWNER_FILE).write_text(
            f"pid {os.getpid()} on {socket.gethostname()} since {when}"
        )
        yield
    finally:
        lock.release()


class Supervisor:
    """One pass per `poll_s`: ingest, follow, prune, keep to the budget, launch.

    `run()` holds the sweep's lock and returns when every trial is final and no more are due.
    """

    def __init__(
        self,
        store: Store,
        sweep: str,
        options: SweepOptions,
        on_tick: Callable[[list[RunRow], list[str]], None] | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.store, self.sweep, self.options = store, sweep, options
        self.on_tick = on_tick
        self.poll_s = poll_s
        self.local: dict[str, tuple[subprocess.Popen[bytes], str | None]] = {}  # run -> (proc, gpu)
        self.notes: list[str] = []  # one line per launch, prune or problem, for the display
        entry = sweep_entry(store, sweep)
        self.spec: dict[str, Any] = dict(entry.get("spec") or {})
        self.started_at = float(entry.get("created") or time.time())
        self.trials: SweepTrials | None = None  # opened under the lock
        self.exhausted: str | None = None  # why no more trials start (the budget)

    # -- one pass ---------------------------------------------------------------------------
    def rows(self) -> list[RunRow]:
        return self.store.list_runs(sweep=self.sweep)

    def open(self) -> SweepTrials:
        if self.trials is None:
            self.trials = SweepTrials.open(self.store, self.sweep, self.spec, self.options.pruning)
            self.trials.notes = self.notes
        return self.trials

    def step(self) -> list[RunRow]:
        trials = self.open()
        refresh(self.store)
        if self.options.slurm is not None:
            slurm.refresh_slurm_statuses(self.store)
        self._reap()
        for row in self.rows():
            if row.is_final:
                trials.finish(row)
            elif row.status == "running":
                verdict = trials.follow(row)
                if verdict is not None and trials.search is not None:
                    reason = trials.search.why_pruned(row.name, *verdict)
                    self._stop(row, "pruned", reason, f"pruned at epoch {verdict[0]}")
        self._keep_to_budget(self.rows())
        self._launch(self.rows())
        rows = self.rows()
        if self.on_tick is not None:
            self.on_tick(rows, self.notes)
        return rows

    def done(self, rows: list[RunRow]) -> bool:
        if self.local or not all(r.is_final for r in rows):
            return False
        return self.exhausted is not None or not self.open().more_to_ask(rows)

    def run(self) -> list[RunRow]:
        with sweep_lock(self.store.home, self.sweep):
            try:
                while True:
                    rows = self.step()
                    if self.done(rows):
                        for row in rows:  # results that ended during the last pass
                            self.open().finish(row)
                        return rows
                    time.sleep(self.poll_s)
            except KeyboardInterrupt:
                self.interrupt()
                raise

    # -- budget -------------------------------------------------------------------------------
    def _keep_to_budget(self, rows: list[RunRow]) -> None:
        budget = self.options.budget
        if not budget.limited:
            return
        if self.exhausted is None:
            self.exhausted = budget.spent(
                self.started_at, time.time(), [r.last_epoch for r in rows]
            )
            if self.exhausted is None:
                return
            self.notes.append(f"budget: {self.exhausted}; no new trials start")
        for row in rows:
            if row.status == "queued" and not row.slurm_job_id and row.name not in self.local:
                self.store.set_status(
                    row.name, "stopped", error=f"Not started: the sweep's {self.exhausted}."
                )
            elif budget.hard and row.status in ACTIVE_STATUSES:
                reason = f"Stopped: the sweep's {self.exhausted} (--hard)."
                self._stop(row, "stopped", reason, "stopped (budget spent)")

    # -- launching ----------------------------------------------------------------------------
    def _active(self, rows: list[RunRow]) -> int:
        if self.options.slurm is not None:
            return sum(1 for r in rows if r.slurm_job_id and not r.is_final)
        # trials started by an earlier supervisor of this sweep (re-attached) count too
        return len(self.local) + sum(
            1 for r in rows if r.status == "running" and r.name not in self.local
        )

    def _free_gpu(self) -> str | None:
        if not self.options.gpus:
            return None
        load = {gpu: 0 for gpu in self.options.gpus}
        for _, gpu in self.local.values():
            if gpu in load:
                load[gpu] += 1
        return min(self.options.gpus, key=lambda g: (load[g], self.options.gpus.index(g)))

    def _next(self, rows: list[RunRow]) -> RunRow | None:
        """The next trial to start: a queued run, or a new one asked from the sampler."""
        for row in rows:
            if row.status == "queued" and not row.slurm_job_id and row.name not in self.local:
                return row
        trials = self.open()
        if self.exhausted is None and trials.more_to_ask(rows):
            return trials.new_run(rows)
        return None

    def _launch(self, rows: list[RunRow]) -> None:
        limit = max(1, self.options.parallel)
        while self.exhausted is None and self._active(rows) < limit:
            row = self._next(rows)
            if row is None:
                return
            self.open().starting(row)
            self._start(row)
            rows = self.rows()

    def _start(self, row: RunRow) -> None:
        if self.options.slurm is not None:
            assert row.path is not None
            try:
                job_id = slurm.submit(self.store.home, row.path, self.options.slurm, row.name)
            except Exception as exc:  # sbatch refused: this trial fails, the sweep goes on
                self.store.set_status(row.name, "failed", error=str(exc))
                self.notes.append(f"{row.name}: not submitted ({exc})")
                return
            self.store.update_run(row.name, slurm_job_id=job_id)
            self.notes.append(f"{row.name}: Slurm job {job_id}")
            return
        gpu = self._free_gpu()
        try:
            process = self.start_local(row, gpu)
        except Exception as exc:
            self.notes.append(f"{row.name}: could not start ({exc})")
            return
        self.local[row.name] = (process, gpu)
        self.notes.append(
            f"{row.name}: started (pid {process.pid}" + (f", GPU {gpu})" if gpu else ")")
        )

    def start_local(self, row: RunRow, gpu: str | None) -> subprocess.Popen[bytes]:
        """Where a local worker starts: the one place that sets its environment."""
        env = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {}
        return launch.start_worker(self.store, row.name, env=env, cpus=self.options.cpus)

    def _reap(self) -> None:
        for name, (process, _) in list(self.local.items()):
            if process.poll() is not None:
                del self.local[name]
                refresh(self.store, [name])
                cores.rebalance(self.store.home)  # the trials still going take over its cores

    # -- stopping -----------------------------------------------------------------------------
    def _stop(self, row: RunRow, status: str, reason: str, note: str) -> None:
        """Stop a trial (it checkpoints) and give it `status` unless it ended on its own."""
        if row.slurm_job_id:
            slurm.cancel(row.slurm_job_id)
            _wait_final(self.store, row.name, 120.0)
        else:
            entry = self.local.pop(row.name, None)
            if entry is not None:
                process = entry[0]
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                refresh(self.store, [row.name])
            else:  # started by an earlier supervisor of this sweep
                try:
                    launch.stop_run(self.store, self.store.get_run(row.name))
                except RheaError:
                    pass  # it ended meanwhile
                _wait_final(self.store, row.name, 120.0)
        current = self.store.get_run(row.name)
        if current.status in ("completed", "failed", "diverged"):
            return  # it finished on its own before the stop took effect
        self.store.set_status(row.name, status, error=reason)
        self.notes.append(f"{row.name}: {note}")

    def interrupt(self) -> None:
        """Ctrl-C: stop the local trials (checkpointed) and the queued ones; Slurm jobs stay."""
        for process, _ in list(self.local.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, (process, _) in list(self.local.items()):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            self.local.pop(name, None)
        refresh(self.store)
        for row in self.rows():
            if row.status == "queued" and not row.slurm_job_id:
                self.store.set_status(
                    row.name,
                    "stopped",
                    error="The sweep was interrupted before this trial started.",
                )


def _wait_final(store: Store, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        refresh(store, [name])
        if store.get_run(name).status not in ACTIVE_STATUSES:
            return
        time.sleep(0.5)


def options_of(store: Store, sweep: str) -> SweepOptions:
    return SweepOptions.from_dict(sweep_entry(store, sweep)["spec"].get("run") or {})


def start_detached(home: Path, sweep: str) -> int:
    """Start `python -m rhea_engine.runs.supervise HOME SWEEP` in its own session; its pid."""
    folder = home / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{sweep}.{SUPERVISOR_LOG}", "ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own module, names checked)
            [sys.executable, "-m", "rhea_engine.runs.supervise", str(home), sweep],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=home,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return process.pid


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Supervise a Rhea sweep until every trial ends.")
    parser.add_argument("home")
    parser.add_argument("sweep")
    args = parser.parse_args(argv)
    with Store(args.home) as store:
        supervisor = Supervisor(store, args.sweep, options_of(store, args.sweep))
        signal.signal(signal.SIGTERM, _interrupted)
        try:
            rows = supervisor.run()
        except KeyboardInterrupt:
            print(f"sweep {args.sweep}: interrupted; running trials were stopped", flush=True)
            return 130
        except RheaError as exc:
            print(f"sweep {args.sweep}: {exc}", flush=True)
            return 2
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        print(
            f"sweep {args.sweep}: done ({', '.join(f'{n} {s}' for s, n in counts.items())})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

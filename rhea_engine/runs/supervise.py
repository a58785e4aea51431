"""Supervise a sweep: keep N trials going (local workers or Slurm jobs), prune with ASHA.

The supervisor is a front end: it owns runs.db like the CLI does, launches workers through
`rhea_engine.runs.launch` (or submits Slurm jobs), and ends when every trial has a final
status. `python -m rhea_engine.runs.supervise HOME SWEEP` runs it in the background
(`rhea sweep --detach`); its options are read from the sweep's stored spec.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine.runs import launch, slurm
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.store import RunRow, Store
from rhea_engine.sweep.asha import Asha
from rhea_engine.vocabulary import ACTIVE_STATUSES

SUPERVISOR_LOG = "supervisor.log"


@dataclass
class SweepOptions:
    """How a sweep's trials are run (stored in the sweep's spec under "run")."""

    parallel: int = 1
    gpus: list[str] = field(default_factory=list)
    asha_min_epochs: int | None = None  # None: no early stopping
    asha_eta: int = 3
    slurm: slurm.SlurmOptions | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "parallel": self.parallel,
            "gpus": self.gpus,
            "asha_min_epochs": self.asha_min_epochs,
            "asha_eta": self.asha_eta,
            "slurm": self.slurm.to_dict() if self.slurm else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepOptions:
        return cls(
            parallel=int(data.get("parallel") or 1),
            gpus=[str(g) for g in data.get("gpus") or []],
            asha_min_epochs=data.get("asha_min_epochs"),
            asha_eta=int(data.get("asha_eta") or 3),
            slurm=slurm.SlurmOptions(**data["slurm"]) if data.get("slurm") else None,
        )


class Supervisor:
    """One pass per `poll_s`: ingest, prune, launch; `run()` returns when all trials are final."""

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
        self.asha: Asha | None = None
        if options.asha_min_epochs:
            epochs = max(int(r.config.get("epochs", 1)) for r in store.list_runs(sweep=sweep))
            self.asha = Asha(int(options.asha_min_epochs), options.asha_eta, epochs)

    # -- one pass ---------------------------------------------------------------------------
    def rows(self) -> list[RunRow]:
        return self.store.list_runs(sweep=self.sweep)

    def step(self) -> list[RunRow]:
        refresh(self.store)
        if self.options.slurm is not None:
            slurm.refresh_slurm_statuses(self.store)
        self._reap()
        rows = self.rows()
        if self.asha is not None:
            self._prune(rows)
            rows = self.rows()
        self._launch(rows)
        rows = self.rows()
        if self.on_tick is not None:
            self.on_tick(rows, self.notes)
        return rows

    def done(self, rows: list[RunRow]) -> bool:
        return not self.local and all(r.is_final for r in rows)

    def run(self) -> list[RunRow]:
        try:
            while True:
                rows = self.step()
                if self.done(rows):
                    return rows
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            self.interrupt()
            raise

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

    def _launch(self, rows: list[RunRow]) -> None:
        limit = max(1, self.options.parallel)
        waiting = [
            r
            for r in rows
            if r.status == "queued" and not r.slurm_job_id and r.name not in self.local
        ]
        for row in waiting:
            if self._active(self.rows()) >= limit:
                break
            if self.options.slurm is not None:
                assert row.path is not None
                try:
                    job_id = slurm.submit(self.store.home, row.path, self.options.slurm, row.name)
                except Exception as exc:  # sbatch refused: this trial fails, the sweep goes on
                    self.store.set_status(row.name, "failed", error=str(exc))
                    self.notes.append(f"{row.name}: not submitted ({exc})")
                    continue
                self.store.update_run(row.name, slurm_job_id=job_id)
                self.notes.append(f"{row.name}: Slurm job {job_id}")
                continue
            gpu = self._free_gpu()
            env = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {}
            try:
                process = launch.start_worker(self.store, row.name, env=env)
            except Exception as exc:
                self.notes.append(f"{row.name}: could not start ({exc})")
                continue
            self.local[row.name] = (process, gpu)
            self.notes.append(
                f"{row.name}: started (pid {process.pid}" + (f", GPU {gpu})" if gpu else ")")
            )

    def _reap(self) -> None:
        for name, (process, _) in list(self.local.items()):
            if process.poll() is not None:
                del self.local[name]
                refresh(self.store, [name])

    # -- early stopping -----------------------------------------------------------------------
    def _prune(self, rows: list[RunRow]) -> None:
        assert self.asha is not None
        for row in rows:
            if row.status not in ("running", "completed") or not row.last_epoch:
                continue
            pending = self.asha.pending_rungs(row.name, row.last_epoch)
            if not pending:
                continue
            series = dict(self.store.metrics(row.name, ["test_loss"]).get("test_loss", []))
            for rung in pending:
                loss = series.get(rung)
                if loss is None:
                    continue
                if self.asha.report(row.name, rung, loss) and row.status == "running":
                    self._stop_pruned(row, rung, loss)
                    break

    def _stop_pruned(self, row: RunRow, rung: int, loss: float) -> None:
        assert self.asha is not None
        reached = len(self.asha.recorded[rung])
        reason = (
            f"Pruned by ASHA at epoch {rung}: its test loss {loss:.4g} was not among the best "
            f"1/{self.asha.eta} of the {reached} trials that reached that epoch."
        )
        if row.slurm_job_id:
            slurm.cancel(row.slurm_job_id)
            _wait_final(self.store, row.name, 120.0)
        else:
            entry = self.local.get(row.name)
            if entry is not None:
                process = entry[0]
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                del self.local[row.name]
                refresh(self.store, [row.name])
            else:  # started by an earlier supervisor of this sweep
                launch.stop_run(self.store, row)
                _wait_final(self.store, row.name, 120.0)
        current = self.store.get_run(row.name)
        if current.status in ("completed", "failed", "diverged"):
            return  # it finished on its own before the stop took effect
        self.store.set_status(row.name, "pruned", error=reason)
        self.notes.append(f"{row.name}: pruned at epoch {rung} (test loss {loss:.3g})")

    # -- interruption -------------------------------------------------------------------------
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
    for entry in store.sweeps():
        if entry["name"] == sweep:
            return SweepOptions.from_dict(entry["spec"].get("run") or {})
    raise KeyError(sweep)


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

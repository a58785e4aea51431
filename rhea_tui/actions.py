"""What the TUI's keys do to runs, through the same engine calls as the CLI commands.

Each action takes the store and a run handle and returns an ActionResult (the run it acted
on, a one-line message, and the figures behind it); a RheaError carries the user-facing
reason. Actions run on worker threads; the Store's own lock serialises its connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine.errors import ExportError, RheaError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.store import RunRow, Store
from rhea_tui.format import parity_text


@dataclass(frozen=True)
class ActionResult:
    """The outcome of an action on one run."""

    handle: str
    message: str
    figures: dict[str, float] = field(default_factory=dict)
    path: Path | None = None  # a file the action wrote (an export)


def stop_run(store: Store, handle: str) -> ActionResult:
    """As `rhea stop`: SIGTERM to the worker (or the Slurm hook); it checkpoints and stops."""
    from rhea_engine.runs import launch

    refresh(store, [handle])
    done = launch.stop_run(store, store.get_run(handle))
    return ActionResult(handle, f"{handle}: {done}")


def resume_point(row: RunRow) -> str:
    """From where a resume continues: the run's latest checkpoint, which the worker takes."""
    epochs = [int(c["epoch"]) for c in row.checkpoints if c.get("epoch") is not None]
    if not epochs:
        return "from scratch (no checkpoint)"
    start = max(epochs)
    redo = (row.last_epoch or 0) - start
    again = f"; epochs {start + 1}-{row.last_epoch} train again" if redo > 0 else ""
    return f"from epoch {start}{again}"


def resume_run(store: Store, handle: str) -> ActionResult:
    """As `rhea resume --detach`: continue from the last checkpoint in the background."""
    from rhea_engine.runs import launch

    refresh(store, [handle])
    point = resume_point(store.get_run(handle))
    process = launch.resume_run(store, handle)
    if process is None:
        return ActionResult(handle, f"{handle}: resumed {point} (resubmitted to Slurm)")
    message = f"{handle}: resumed {point} (pid {process.pid})"
    return ActionResult(handle, message, {"pid": process.pid})


def delete_run(store: Store, handle: str) -> ActionResult:
    refresh(store, [handle])  # a worker gone meanwhile is settled, so the run can go
    store.delete_run(handle)
    return ActionResult(handle, f"{handle} deleted")


def export_run(store: Store, handle: str) -> ActionResult:
    """As `rhea export RUN`: TorchScript of the latest checkpoint, parity-checked, made in a
    child process (`rhea_tui.export_job`) so the TUI never holds torch or the model."""
    done = subprocess.run(
        [sys.executable, "-m", "rhea_tui.export_job", str(store.home), handle],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"The export of run '{handle}' ended without a result: {detail}")
    result = json.loads(lines[-1])
    if "error" in result:
        raise RheaError(result["error"], result.get("title"))
    message = f"{handle}: epoch {result['epoch']} exported to {result['path']}; " + parity_text(
        result["parity"]
    )
    return ActionResult(handle, message, dict(result["parity"]), Path(result["path"]))


def prepare_config(home: Path, values: dict[str, Any], name: str | None) -> tuple[Any, Any]:
    """The checks `rhea run` makes before creating a run (name, data files, device).

    Returns the validated config and its data files; no data files means the default
    synthetic set, generated once per home (it can take seconds: call it from a worker).
    """
    from rhea_engine import config as config_mod
    from rhea_engine.runs import defaults, preflight

    config = config_mod.from_dict(values)
    asymptotic, stable = preflight.check_new_run(config, name, ("data files", "stable data"))
    if not asymptotic:
        asymptotic, stable, _ = defaults.default_data(home)
    return config, (asymptotic, stable)


def launch_new_run(
    store: Store, config: Any, data: tuple[list[str], list[str]], name: str | None, detach: bool
) -> ActionResult:
    """Create the run and start its worker through the engine path of `rhea run --detach`."""
    from rhea_engine.runs import launch

    row, process = launch.launch_new_run(store, config, name, data)
    how = "in the background" if detach else "until the TUI quits"
    return ActionResult(
        row.name, f"{row.name} started {how} (pid {process.pid})", {"pid": process.pid}
    )


def _sweep_request(request: Any) -> Any:
    """The engine's SweepRequest for a form request (rhea_tui.form.FormRequest)."""
    from rhea_engine.sweep.start import SweepRequest

    return SweepRequest(
        values=dict(request.shortcuts),
        sets=list(request.sets),
        name=request.name,
        slurm=request.slurm,
        partition=request.partition,
        time_limit=request.time_limit,
    )


def plan_sweep(home: Path, request: Any) -> str:
    """Check a sweep (or a Slurm run) as `rhea sweep --dry-run` does; what it would start."""
    from rhea_engine.sweep import start

    prepared = start.prepare(_sweep_request(request), dry_run=True)
    count = len(prepared.plan.configs) if prepared.plan is not None else 0
    where = f"on Slurm partition {request.partition}" if request.slurm else "here"
    if not request.sweep:
        return f"one run, submitted {where} as a sweep of one trial"
    return f"a grid sweep of {count} run(s), {where}, {prepared.options.parallel} at a time"


def start_sweep(store: Store, request: Any) -> ActionResult:
    """Record the sweep (or the Slurm run) and supervise it in the background, as
    `rhea sweep --detach` does."""
    from rhea_engine.runs import supervise
    from rhea_engine.sweep import start

    prepared = start.prepare(_sweep_request(request))
    started = start.create(store, prepared)
    pid = supervise.start_detached(store.home, started.name)
    runs = ", ".join(started.run_names[:3]) + (" …" if len(started.run_names) > 3 else "")
    return ActionResult(
        started.run_names[0] if started.run_names else started.name,
        f"sweep {started.name} started: {runs} (supervised in the background, pid {pid})",
        {"pid": pid},
    )

"""What the TUI's keys do to runs, through the same engine calls as the CLI commands.

Each function takes the store (or the home, for long work kept off the store thread) and
returns a one-line message for the screen; a RheaError carries the user-facing reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhea_engine.errors import DataError, RheaError
from rhea_engine.runs.store import Store


def stop_run(store: Store, handle: str) -> str:
    """As `rhea stop`: SIGTERM to the worker (or the Slurm hook); it checkpoints and stops."""
    from rhea_engine.runs import launch

    store.ingest([handle])
    done = launch.stop_run(store, store.get_run(handle))
    return f"{handle}: {done}"


def resume_run(store: Store, handle: str) -> str:
    """As `rhea resume --detach`: continue from the last checkpoint in the background."""
    from rhea_engine.runs import launch

    process = launch.resume_run(store, handle)
    where = f"pid {process.pid}" if process is not None else "resubmitted to Slurm"
    return f"{handle}: resumed from its last checkpoint ({where})"


def delete_run(store: Store, handle: str) -> str:
    store.delete_run(handle)
    return f"{handle} deleted"


def export_run(home: Path, handle: str) -> str:
    """As `rhea export RUN`: TorchScript of the latest checkpoint, parity-checked."""
    try:
        from rhea_engine.export import export_run as engine_export
    except ImportError as exc:
        raise RheaError(
            "Export is not available in this installation; use `rhea export RUN` instead.",
            "Export unavailable",
        ) from exc
    result = engine_export(home, handle)
    worst = max(result.parity.values(), default=0.0)
    return f"{handle} exported to {result.path} (max abs difference {worst:.1e})"


def prepare_config(home: Path, values: dict[str, Any]) -> dict[str, Any]:
    """The checks `rhea run` makes before creating a run, and its default data set.

    Data files must exist and be HDF5 of the right kind, both kinds or neither; a CUDA
    device must exist. With no files, the synthetic default set is generated once per home.
    """
    from rhea_engine.runs import preflight

    asymptotic = preflight.check_data_files(values["database_list"], "data files", "asymptotic")
    stable = preflight.check_data_files(values["stable_database_list"], "stable data", "stable")
    if bool(asymptotic) != bool(stable):
        raise DataError(
            "Training needs both asymptotic files (data files) and stability files (stable "
            "data); give both, or neither to use the default synthetic data set."
        )
    preflight.check_device(values["device"])
    if not asymptotic:
        from rhea_engine.runs.defaults import default_data

        asymptotic, stable, _ = default_data(home)
    return {**values, "database_list": asymptotic, "stable_database_list": stable}


def launch_new_run(store: Store, config: dict[str, Any], name: str | None, detach: bool) -> str:
    """Create the run and start its worker, as `rhea run --detach` does."""
    from rhea_engine.errors import RunError
    from rhea_engine.runs import launch

    if name is not None and any(r.name == name for r in store.list_runs()):
        raise RunError(f"A run named '{name}' already exists; choose another name.")
    row = store.create_run(config, name=name, status="queued")
    process = launch.start_worker(store, row.name)
    how = "in the background" if detach else "until the TUI quits"
    return f"{row.name} started {how} (pid {process.pid})"

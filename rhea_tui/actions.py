"""What the TUI's keys do to runs, through the same engine code as the CLI commands.

Each function takes the store (or the home, for long work kept off the store thread) and
returns a one-line message for the screen; a RheaError carries the user-facing reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhea_engine.errors import RheaError, RunError
from rhea_engine.runs.store import Store


def stop_run(store: Store, handle: str) -> str:
    from rhea_engine.runs import launch

    store.ingest([handle])
    row = store.get_run(handle)
    done = launch.stop_run(store, row)
    return f"{handle}: {done}"


def resume_run(store: Store, handle: str) -> str:
    from rhea_engine.runs import launch

    store.ingest([handle])
    row = store.get_run(handle)
    if row.status in ("running", "queued"):
        raise RunError(f"Run '{handle}' is {row.status}; only a finished run can be resumed.")
    if row.status == "completed":
        raise RunError(
            f"Run '{handle}' completed all its epochs; start a new run to train longer."
        )
    process = launch.start_worker(store, handle, resume=True)
    return f"{handle}: resumed from its last checkpoint (pid {process.pid})"


def delete_run(store: Store, handle: str) -> str:
    store.delete_run(handle)
    return f"{handle} deleted"


def export_run(home: Path, handle: str) -> str:
    """Export the run's model (TorchScript) next to its run directory, if export exists."""
    try:
        from rhea_engine import export
    except ImportError as exc:
        raise RheaError(
            "Export is not available in this installation; use `rhea export RUN` instead.",
            "Export unavailable",
        ) from exc
    function: Any = getattr(export, "export_run", None)
    if function is None:
        raise RheaError(
            "Export is not available in this installation; use `rhea export RUN` instead.",
            "Export unavailable",
        )
    store = Store(home)
    try:
        result = function(store, handle)
    finally:
        store.close()
    path = getattr(result, "path", result)
    return f"{handle} exported to {path}"


def launch_new_run(store: Store, config: dict[str, Any], name: str | None, detach: bool) -> str:
    """Create the run and start its worker, as `rhea run --detach` does."""
    from rhea_engine.runs import launch

    row = store.create_run(config, name=name)
    process = launch.start_worker(store, row.name)
    how = "detached" if detach else "attached to this session"
    return f"{row.name} started ({how}, pid {process.pid})"


def with_default_data(home: Path, values: dict[str, Any]) -> dict[str, Any]:
    """With no data files given, the synthetic default set (generated once per home)."""
    if values.get("database_list") or values.get("stable_database_list"):
        return values
    from rhea_engine.runs.defaults import default_data

    asymptotic, stable, _ = default_data(home)
    return {**values, "database_list": asymptotic, "stable_database_list": stable}

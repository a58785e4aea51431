"""What the TUI's keys do to runs, through the same engine calls as the CLI commands.

Each function takes the store (or the home, for long work kept off the store thread) and
returns a one-line message for the screen; a RheaError carries the user-facing reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhea_engine.errors import RheaError
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


def prepare_config(home: Path, values: dict[str, Any], name: str | None) -> tuple[Any, Any]:
    """The checks `rhea run` makes before creating a run (name, data files, device).

    Returns the validated config and its data files; no data files means the default
    synthetic set, generated once per home (kept off the store thread: it can take seconds).
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
) -> str:
    """Create the run and start its worker through the engine path of `rhea run --detach`."""
    from rhea_engine.runs import launch

    row, process = launch.launch_new_run(store, config, name, data)
    how = "in the background" if detach else "until the TUI quits"
    return f"{row.name} started {how} (pid {process.pid})"

"""CLI commands for runs: run, ls, show, stop, resume, rm, db rebuild."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rhea_tui.common import (
    HomeOpt,
    WhereOpt,
    console,
    err_console,
    handle_errors,
    resolve_home,
)

F = TypeVar("F", bound=Callable[..., Any])
_opened: list[Any] = []
db_app = typer.Typer(help="Maintain runs.db.\n\nExample: rhea db rebuild", no_args_is_help=True)


def _store(home: Path | None, create: bool = False) -> Any:
    from rhea_engine.runs.refresh import refresh
    from rhea_engine.runs.store import Store

    path = resolve_home(home)
    if create:
        path.mkdir(parents=True, exist_ok=True)
        store = Store(path)
    else:
        store = Store.open_existing(path)
    _opened.append(store)
    refresh(store)
    return store


def _closing(fn: F) -> F:
    """Close the stores a command opened when it returns (the CLI can run in-process)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            while _opened:
                _opened.pop().close()

    return wrapper  # type: ignore[return-value]


def run(
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (learning_rate).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size.")] = None,
    width: Annotated[int | None, typer.Option(help="Width of every head (width_*).")] = None,
    nhidden: Annotated[
        int | None, typer.Option(help="Hidden layers of every head (nhidden_*).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (random_seed).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="Asymptotic HDF5 file (repeatable).")
    ] = None,
    stable_data: Annotated[
        list[Path] | None, typer.Option("--stable-data", help="Stability HDF5 file (repeatable).")
    ] = None,
    architecture: Annotated[
        str | None,
        typer.Option(help="Network: transfer (transfer matrices) or equivariant (e3nn)."),
    ] = None,
    symmetry: Annotated[
        str | None,
        typer.Option(
            help="Exact flavor symmetry: none, box3d (nu<->nubar x mu<->tau) or full "
            "(every flavor permutation x nu<->nubar)."
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config file.")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key=value for any config key (repeatable).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Run name (default run1, run2, ...).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start in the background and print the handle.")
    ] = False,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the run (repeatable; see rhea tag).")
    ] = None,
    cpus: Annotated[
        int | None,
        typer.Option(
            "--cpus", help="Cores the local runs of this home share (default: all usable ones)."
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Train one model. Without --data, uses a synthetic data set generated once into <home>/data/.

    Example: rhea run --lr 1e-4 --epochs 20 --width 64 --name first-try --tag baseline
    """
    from rhea_engine import config as config_mod
    from rhea_engine.runs import cores, launch, preflight
    from rhea_engine.runs.rundir import check_tag

    cores.cpu_pool(cpus)

    shortcuts = {
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
        "width": width,
        "nhidden": nhidden,
        "seed": seed,
        "device": device,
        "data": [str(p) for p in data or []],
        "stable_data": [str(p) for p in stable_data or []],
        "architecture": architecture,
        "symmetry": symmetry,
    }
    cfg = config_mod.resolve(config, shortcuts, sets or [])
    data_files = preflight.check_new_run(cfg, name)
    for tag in tags or []:
        check_tag(tag)
    store = _store(home, create=True)
    launch.check_name_free(store, name)
    if not any(data_files):
        data_files = _default_data(store.home)
    row, process = launch.launch_new_run(store, cfg, name, data_files, tags=tags or [], cpus=cpus)
    if detach:
        console.print(row.name)
        return
    _follow(store, row.name, process, cfg.epochs)


def _default_data(home: Path) -> tuple[list[str], list[str]]:
    from rich.progress import Progress

    from rhea_engine.runs import defaults

    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("Checking the default synthetic data set", total=1.0)

        def report(message: str, fraction: float) -> None:
            progress.update(task, description=message, completed=fraction)

        asymptotic, stable, made = defaults.default_data(home, progress=report)
    if made:
        err_console.print(
            f"Generated the default synthetic data set in {home / defaults.DATA_DIR}."
        )
    return asymptotic, stable


def _follow(store: Any, handle: str, process: Any, total: int | None) -> None:
    """Show a progress bar and a line per epoch until the worker ends; exit by its status."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rhea_engine.runs import launch
    from rhea_tui.commands import _runs_render as render

    interrupted = False
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{handle} starting", total=total)

        def on_event(event: dict[str, Any]) -> None:
            nonlocal total
            kind = event.get("type")
            if kind == "start":
                total = event.get("total_epochs") or total
                done = event.get("resumed_from_epoch") or 0
                progress.update(
                    task,
                    total=total,
                    completed=done,
                    description=f"{handle} on {event.get('device', '?')}",
                )
            elif kind == "epoch":
                progress.update(task, completed=event.get("epoch"))
                progress.console.print(render.epoch_line(event, total))
            elif kind == "log":
                progress.console.print(f"[dim]{event.get('message', '')}[/dim]")

        def on_forward(count: int) -> None:
            nonlocal interrupted
            interrupted = True
            progress.console.print(
                "[yellow]Stopping: the worker writes a checkpoint and ends as stopped.[/yellow]"
                if count == 1
                else "[yellow]Still waiting for the worker to stop.[/yellow]"
            )

        with launch.forward_interrupts(process, on_forward):
            row = launch.follow(store, handle, process, on_event)
    console.print(render.run_summary(row))
    _exit_by_status(row, interrupted)


def _exit_by_status(row: Any, interrupted: bool) -> None:
    """Return for a completed run; exit 0 (130 after Ctrl+C) for a stopped one; else raise."""
    from rhea_engine.errors import DivergedError, RunError

    handle = row.name
    if row.status == "completed":
        return
    if row.status == "stopped":
        console.print(
            f"Run {handle} stopped at epoch {row.last_epoch or 0}; continue it with "
            f"`rhea resume {handle}`."
        )
        raise typer.Exit(130 if interrupted else 0)
    if row.status == "diverged":
        raise DivergedError(row.fail_epoch or row.last_epoch or 0, row.fail_task or "?", row.error)
    raise RunError(
        f"Run {handle} ended as {row.status}: {row.error or 'no error message was recorded'} "
        f"(details: `rhea show {handle}`, output: {row.path / 'stdout.log'})."
    )


def _defaults() -> dict[str, Any]:
    from rhea_engine.config import default_config

    return default_config().to_dict()


def ls(
    sweep: Annotated[str | None, typer.Option(help="Only the runs of this sweep.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Sort by: test_loss, train_loss, best_test_loss, eln, lr, epoch, ..."),
    ] = None,
    descending: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    where: WhereOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOpt = None,
) -> None:
    """List runs with their status and latest metrics.

    Example: rhea ls --where "status = completed and best_test_loss < 0.5" --sort test_loss
    """
    from rhea_tui.commands import _runs_render as render

    store = _store(home)
    if sweep is not None:
        store.resolve_handles([f"sweep:{sweep}"])  # an unknown sweep is an error, not "no runs"
    rows = store.list_runs(
        sweep=sweep, status=status, sort=sort, descending=descending, where=where
    )
    if as_json:
        print(json.dumps([render.row_json(r) for r in rows], indent=2))
    elif not rows:
        err_console.print(
            render.no_runs_text(store.list_runs(), sweep, status, where), markup=False
        )
    else:
        params = _swept(rows) if sweep is not None else []
        table = render.runs_table(rows, width=console.width, params=params)
        console.print(table, no_wrap=True, overflow="ellipsis")


def _swept(rows: list[Any]) -> list[str]:
    from rhea_engine.compare import swept_params

    return swept_params(rows)


def show(
    handle: Annotated[str, typer.Argument(metavar="RUN", help="Run handle (run3 or a --name).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOpt = None,
) -> None:
    """Show one run: config, status, errors, metrics, checkpoints, final evaluation.

    Example: rhea show run3
    """
    from rhea_tui.commands import _runs_render as render

    store = _store(home)
    row = store.get_run(handle)
    series = store.metrics(row.name)
    if as_json:
        out = render.row_json(row, full=True)
        out["metrics"] = {name: points[-1][1] for name, points in series.items()}
        print(json.dumps(out, indent=2, default=str))
        return
    console.print(render.run_details(row, series, _defaults()))


def stop(
    handles: Annotated[
        list[str], typer.Argument(metavar="RUN...", help="Run handles or sweep:NAME.")
    ],
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the worker to end (0: don't).")
    ] = 60.0,
    home: HomeOpt = None,
) -> None:
    """Stop runs: the worker writes a checkpoint and ends as stopped.

    Example: rhea stop run3
    """
    from rhea_engine.runs import launch

    store = _store(home)
    rows = store.resolve_handles(handles)
    if len(rows) > 1:  # a sweep or a list: stop what still runs
        rows = [r for r in rows if not r.is_final]
    for row in rows:
        done = launch.stop_run(store, row)
        console.print(f"{row.name}: {done}")
    for row in rows:
        if wait > 0:
            final = launch.wait_final(store, row.name, wait)
            console.print(
                f"{row.name}: {final.status}" + ("" if final.is_final else " (still stopping)")
            )


def resume(
    handle: Annotated[str, typer.Argument(metavar="RUN", help="Run handle.")],
    detach: Annotated[bool, typer.Option("--detach", help="Continue in the background.")] = False,
    from_scratch: Annotated[
        bool,
        typer.Option(
            "--from-scratch",
            help="Start again from epoch 0 (no usable checkpoint): drops the run's metrics so "
            "far; its checkpoint files are kept in checkpoints/discarded-*/.",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Continue a stopped, lost or failed run from its last checkpoint.

    Example: rhea resume run3 --detach
    """
    from rhea_engine.runs import launch

    store = _store(home)
    process = launch.resume_run(store, handle, from_scratch=from_scratch)
    row = store.get_run(handle)
    if process is None:
        console.print(f"{row.name}: submitted to Slurm as job {row.slurm_job_id}")
    elif detach:
        console.print(row.name)
    else:
        _follow(store, row.name, process, row.total_epochs or row.config.get("epochs"))


def rm(
    handles: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[RUN...]", help="Run handles or sweep:NAME (optional with --where)."
        ),
    ] = None,
    where: WhereOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    home: HomeOpt = None,
) -> None:
    """Delete runs: their rows in runs.db and their directories (checkpoints included).

    With --where, the runs given (or all runs, when none is given) that match the filter; the
    matching runs are listed before you are asked. A sweep's record goes with sweep:NAME
    only without --where.

    Example: rhea rm --where "status = failed and sweep = lr-scan"
    """
    from rhea_engine.errors import RunError

    if not handles and where is None:
        raise RunError("Name the runs to delete (run3, sweep:NAME), or give --where.")
    store = _store(home)
    rows = store.resolve_handles(handles or [], where)
    sweeps = [] if where else [h[len("sweep:") :] for h in handles or [] if h.startswith("sweep:")]
    if where is not None and not rows:
        err_console.print("No run matches the filter; nothing was deleted.")
        return
    busy = [r.name for r in rows if r.may_have_worker]
    if busy and (where is not None or len(rows) > 1):
        raise RunError(
            f"{', '.join(busy)} may still be training; stop them first (`rhea stop`) or leave "
            "them out (for example add `and status != running`). Nothing was deleted."
        )
    _confirm_deletion(rows, sweeps, yes)
    for row in rows:
        store.delete_run(row.name)
        console.print(f"Deleted {row.name}.")
    for sweep in dict.fromkeys(sweeps):
        store.delete_sweep(sweep)
        console.print(f"Deleted sweep {sweep}; the name is free again.")


def _confirm_deletion(rows: list[Any], sweeps: list[str], yes: bool) -> None:
    """List what goes and ask (on a terminal); without one, only --yes deletes."""
    from rhea_engine.errors import RunError

    if yes:
        return
    names = ", ".join([r.name for r in rows] + [f"sweep {s}" for s in sweeps])
    if not sys.stdin.isatty():
        raise RunError(f"Deleting {names} cannot be undone; add --yes to confirm.")
    if len(rows) > 1:
        console.print(f"{len(rows)} runs:")
        for row in rows:
            console.print(f"  {row.name:<24} {row.status:<10} {row.sweep or ''}")
    if rows:
        names += " and its directory" if len(rows) == 1 else " and their directories"
    if not typer.confirm(f"Delete {names}?", default=False):
        raise typer.Exit(1)


@db_app.command("rebuild")
@handle_errors
def db_rebuild(home: HomeOpt = None) -> None:
    """Recreate runs.db from the run directories (config.json and events.jsonl).

    Example: rhea db rebuild --home ~/ffi
    """
    from rhea_engine.errors import StoreError
    from rhea_engine.runs.store import DB_FILE, Store

    path = resolve_home(home)
    if not path.is_dir():
        raise StoreError(f"The Rhea home {path} does not exist; give --home or set RHEA_HOME.")
    try:
        store = Store(path)
    except StoreError:
        aside = path / f"{DB_FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in ("", "-wal", "-shm"):
            source = path / (DB_FILE + suffix)
            if source.exists():
                source.rename(Path(str(aside) + suffix))
        err_console.print(f"runs.db could not be opened; moved it aside to {aside}.")
        store = Store(path)
    from rhea_engine.runs.refresh import refresh

    with store:
        count = store.rebuild()
        refresh(store)  # settles runs whose worker is gone, asks Slurm
    console.print(f"Rebuilt {store.path} from {count} run directories.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    for command in (run, ls, show, stop, resume, rm):
        app.command(command.__name__)(handle_errors(_closing(command)))
    app.add_typer(db_app, name="db")

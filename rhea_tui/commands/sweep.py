"""CLI commands: sweep (grid/random search, local or Slurm); compare and import (from _compare)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from rhea_tui.commands._compare import compare, fmt, import_
from rhea_tui.common import HomeOpt, console, err_console, handle_errors, resolve_home

_SHORT = {
    "learning_rate": "lr",
    "random_seed": "seed",
    "batch_size": "batch",
    "dropout_probability": "dropout",
    "weight_decay": "wd",
}


def _caption(rows: list[Any], started: float) -> str:
    """'2/4 done (1 completed, 1 pruned), 2 running, 0 queued, 1:23 elapsed'."""
    final = [r for r in rows if r.is_final]
    counts: dict[str, int] = {}
    for row in final:
        counts[row.status] = counts.get(row.status, 0) + 1
    detail = ", ".join(f"{n} {s}" for s, n in counts.items())
    running = sum(1 for r in rows if r.status == "running")
    queued = sum(1 for r in rows if r.status == "queued")
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    return (
        f"{len(final)}/{len(rows)} done"
        + (f" ({detail})" if detail else "")
        + f", {running} running, {queued} queued, {minutes}:{seconds:02d} elapsed"
    )


def _runs_table(
    rows: list[Any], params: dict[str, dict[str, Any]], title: str, caption: str | None = None
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        caption=caption,
        caption_justify="left",
    )
    for column in ("run", "status"):
        table.add_column(column, no_wrap=True, min_width=9 if column == "status" else None)
    for column in (
        "epoch",
        *(_SHORT.get(p, p) for p in params),
        "train loss",
        "test loss",
        "max ELN",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        epoch = f"{row.last_epoch or 0}/{row.total_epochs or row.config.get('epochs', '?')}"
        table.add_row(
            row.name,
            row.status,
            epoch,
            *(fmt(params[p].get(row.name)) for p in params),
            fmt(row.last_train_loss),
            fmt(row.last_test_loss),
            fmt(row.max_eln_violation),
        )
    return table


def sweep(
    lr: Annotated[
        str | None, typer.Option(help="learning_rate: 1e-4,1e-5 (or 1e-6:1e-3:log with --random).")
    ] = None,
    width: Annotated[str | None, typer.Option(help="All widths: 32,64 (or 16:128:int).")] = None,
    nhidden: Annotated[str | None, typer.Option(help="All nhidden: 0,1,2.")] = None,
    seed: Annotated[str | None, typer.Option(help="random_seed: 42,43.")] = None,
    batch_size: Annotated[str | None, typer.Option(help="batch_size: 1024,4096.")] = None,
    epochs: Annotated[str | None, typer.Option(help="Epochs per run.")] = None,
    data: Annotated[
        str | None, typer.Option(help="Asymptotic HDF5 files (comma-separated).")
    ] = None,
    stable_data: Annotated[
        str | None, typer.Option(help="Stable HDF5 files (comma-separated).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML config file.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=v1,v2 (any config key).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Sweep name (default sweep1, sweep2, ...).")
    ] = None,
    random: Annotated[
        int | None,
        typer.Option(
            "--random", help="Random search with N trials; ranges low:high[:lin|log|int]."
        ),
    ] = None,
    search_seed: Annotated[int, typer.Option(help="Seed of the random search.")] = 0,
    parallel: Annotated[
        int | None,
        typer.Option(help="Trials running at once (default: 1, one per --gpus, all on Slurm)."),
    ] = None,
    gpus: Annotated[
        str | None, typer.Option(help="GPUs to pin trials to, e.g. 0,1 (CUDA_VISIBLE_DEVICES).")
    ] = None,
    detach: Annotated[bool, typer.Option(help="Supervise in the background and return.")] = False,
    asha: Annotated[bool, typer.Option(help="Early-stop weak trials (ASHA on test loss).")] = False,
    asha_min_epochs: Annotated[int, typer.Option(help="First ASHA rung r (epochs).")] = 1,
    asha_eta: Annotated[
        int, typer.Option(help="ASHA reduction factor eta (rungs r, r*eta, ...).")
    ] = 3,
    slurm_: Annotated[
        bool, typer.Option("--slurm", help="Submit each trial as a Slurm job.")
    ] = False,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    time_limit: Annotated[
        str | None, typer.Option("--time", help="Slurm time limit per run, HH:MM:SS.")
    ] = None,
    gpus_per_run: Annotated[int, typer.Option(help="GPUs per Slurm job.")] = 1,
    account: Annotated[str | None, typer.Option(help="Slurm account.")] = None,
    cpus_per_run: Annotated[int | None, typer.Option(help="CPUs per Slurm job.")] = None,
    attach: Annotated[
        str | None,
        typer.Option(help="Supervise an existing sweep again (after its supervisor ended)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the trials (as JSON) and create nothing.")
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Run a grid or random search as a named sweep.

    Comma lists make a grid over --lr, --width, --nhidden, --seed, --batch-size, --epochs and
    --set key=v1,v2; with --random N, ranges low:high[:log|int] are sampled. Runs are named
    NAME-1, NAME-2, ...

    Example: rhea sweep --lr 1e-4,1e-5 --width 32,64 --parallel 2 --epochs 20
    """
    from rhea_engine.runs import supervise
    from rhea_engine.runs.store import Store
    from rhea_engine.sweep import start

    root = resolve_home(home)
    if attach is not None:
        _attach(root, attach, detach)
        return
    request = start.SweepRequest(
        values={
            "lr": lr,
            "width": width,
            "nhidden": nhidden,
            "seed": seed,
            "batch_size": batch_size,
            "epochs": epochs,
            "data": data,
            "stable_data": stable_data,
            "device": device,
        },
        sets=set_ or [],
        config_file=config_file,
        name=name,
        random=random,
        search_seed=search_seed,
        parallel=parallel,
        gpus=gpus,
        asha=asha,
        asha_min_epochs=asha_min_epochs,
        asha_eta=asha_eta,
        slurm=slurm_,
        partition=partition,
        time_limit=time_limit,
        gpus_per_run=gpus_per_run,
        account=account,
        cpus_per_run=cpus_per_run,
    )
    # every trial is validated before runs.db is even opened: a bad value writes nothing
    prepared = start.prepare(request)
    if dry_run:
        typer.echo(json.dumps(prepared.dry_run(), indent=2))
        return
    with Store(root) as store:
        started = start.create(store, prepared)
        if started.made_default_data:
            err_console.print(f"Generated the default synthetic data set in {root / 'data'}.")
        console.print(
            f"Sweep [bold]{started.name}[/]: {len(started.run_names)} runs "
            f"{started.run_names[0]} .. {started.run_names[-1]}"
            + (
                f" on Slurm partition {partition}"
                if slurm_
                else f", {started.options.parallel} at a time"
            )
        )
        if detach:
            pid = supervise.start_detached(root, started.name)
            console.print(
                f"Supervising in the background (pid {pid}); follow with "
                f"`rhea ls --sweep {started.name}` or `rhea tui`."
            )
            return
        _supervise_foreground(store, started.name, started.options)


def _attach(root: Path, sweep_name: str, detach: bool) -> None:
    from rhea_engine.errors import SweepError
    from rhea_engine.runs import supervise
    from rhea_engine.runs.store import Store
    from rhea_engine.sweep import start

    if not (root / "runs.db").exists():
        raise SweepError(f"{root} has no runs.db; there is no sweep '{sweep_name}' to attach to.")
    with Store(root) as store:
        options = start.existing(store, sweep_name)
        if detach:
            pid = supervise.start_detached(root, sweep_name)
            console.print(f"Supervising sweep {sweep_name} in the background (pid {pid}).")
            return
        _supervise_foreground(store, sweep_name, options)


def _supervise_foreground(store: Any, sweep_name: str, options: Any) -> None:
    from rhea_engine.compare import differing_params
    from rhea_engine.runs import supervise

    shown = 0
    params = differing_params({r.name: r.config for r in store.list_runs(sweep=sweep_name)})

    started = time.monotonic()
    with Live(console=console, auto_refresh=False, transient=False) as live:

        def on_tick(rows: list[Any], notes: list[str]) -> None:
            nonlocal shown
            for note in notes[shown:]:
                live.console.print(note)
            shown = len(notes)
            caption = _caption(rows, started)
            live.update(_runs_table(rows, params, f"sweep {sweep_name}", caption), refresh=True)

        supervisor = supervise.Supervisor(store, sweep_name, options, on_tick=on_tick)
        try:
            rows = supervisor.run()
        except KeyboardInterrupt:
            err_console.print(
                "Interrupted: the local trials were stopped with a checkpoint"
                + ("; the Slurm jobs keep running." if options.slurm else ".")
            )
            raise typer.Exit(130) from None
    if not console.is_terminal:
        console.line()
    done = [r for r in rows if r.status == "completed"]
    best = min(
        (r for r in rows if r.best_test_loss is not None),
        key=lambda r: r.best_test_loss,
        default=None,
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    console.print(
        f"Sweep {sweep_name} finished: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + "."
        + (f" Best test loss {best.best_test_loss:.4g} in {best.name}." if best else "")
    )
    if not done and not any(r.status == "pruned" for r in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("sweep")(handle_errors(sweep))
    app.command("compare")(handle_errors(compare))
    app.command("import")(handle_errors(import_))

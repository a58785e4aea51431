"""CLI commands: sweep (grid, random or model-based search, local or Slurm); compare and import."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from rhea_tui.commands._compare import compare
from rhea_tui.commands.importing import import_
from rhea_tui.common import HomeOpt, console, err_console, handle_errors, resolve_home
from rhea_tui.format import MAX_ELN_LABEL, cell, max_eln_text, status_text

_SHORT = {
    "learning_rate": "lr",
    "random_seed": "seed",
    "batch_size": "batch",
    "dropout_probability": "dropout",
    "weight_decay": "wd",
}


def _caption(rows: list[Any], started: float, total: int | None) -> str:
    """'2/4 done (1 completed, 1 pruned), 2 running, 0 queued, 1:23 elapsed'."""
    final = [r for r in rows if r.is_final]
    counts: dict[str, int] = {}
    for row in final:
        counts[row.status] = counts.get(row.status, 0) + 1
    detail = ", ".join(f"{n} {s}" for s, n in counts.items())
    running = sum(1 for r in rows if r.status == "running")
    queued = sum(1 for r in rows if r.status == "queued")
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    of = total if total is not None and total >= len(rows) else len(rows)
    return (
        f"{len(final)}/{of} done"
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
        MAX_ELN_LABEL,
    ):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        epoch = f"{row.last_epoch or 0}/{row.total_epochs or row.config.get('epochs', '?')}"
        table.add_row(
            row.name,
            status_text(row.status, marked=False),
            epoch,
            *(cell(params[p].get(row.name)) for p in params),
            cell(row.last_train_loss),
            cell(row.last_test_loss),
            max_eln_text(row, cell),
        )
    return table


def sweep(
    lr: Annotated[
        str | None,
        typer.Option(help="learning_rate: 1e-4,1e-5, or a range 1e-6:1e-3:log (not for grids)."),
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
        list[str] | None,
        typer.Option("--set", help="key=v1,v2 or key=low:high[:log] (any config key)."),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(
            help="Search space file (JSON or TOML) in Syne Tune's config_space shape, as "
            "upstream's parms['syne_tune']; command-line values override it."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Sweep name (default sweep1, sweep2, ...).")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            help="grid (default), random, or model-based: tpe, gp (Gaussian process), cmaes."
        ),
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="Trials of a random or model-based search.")
    ] = None,
    random: Annotated[
        int | None, typer.Option("--random", help="Same as --search random --trials N.")
    ] = None,
    search_seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    objective: Annotated[
        list[str] | None,
        typer.Option(
            help="What to minimise (repeat for several): test_loss (default), eln_violation, "
            "params, latency, or any recorded metric."
        ),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            help="Trials running at once (default: 1, one per --gpus; on Slurm all of a "
            "grid or random search, 4 of a model-based one)."
        ),
    ] = None,
    gpus: Annotated[
        str | None, typer.Option(help="GPUs to pin trials to, e.g. 0,1 (CUDA_VISIBLE_DEVICES).")
    ] = None,
    cpus: Annotated[
        int | None,
        typer.Option(help="Cores the local trials share (default: all usable ones)."),
    ] = None,
    detach: Annotated[bool, typer.Option(help="Supervise in the background and return.")] = False,
    asha: Annotated[
        bool, typer.Option(help="Prune weak trials on their test loss (asynchronous halving).")
    ] = False,
    hyperband: Annotated[bool, typer.Option(help="Prune weak trials with Hyperband.")] = False,
    asha_min_epochs: Annotated[
        int | None, typer.Option(help="First pruning rung r in epochs (default 1).")
    ] = None,
    asha_eta: Annotated[
        int | None, typer.Option(help="Reduction factor eta, rungs r, r*eta, ... (default 3).")
    ] = None,
    budget: Annotated[
        str | None, typer.Option(help="Wall-clock budget, e.g. 2h or 90m: no trial starts after.")
    ] = None,
    max_epochs_total: Annotated[
        int | None, typer.Option(help="Budget in epochs trained by all trials together.")
    ] = None,
    hard: Annotated[
        bool, typer.Option(help="Stop running trials too when the budget is spent.")
    ] = False,
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
    resume: Annotated[
        str | None,
        typer.Option(help="Continue sweep NAME after its front end ended (finished trials stay)."),
    ] = None,
    attach: Annotated[str | None, typer.Option(hidden=True)] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the trials or the search (as JSON) and create nothing.")
    ] = False,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag every run of the sweep (repeatable).")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Search hyperparameters as a named sweep: grid, random, or model-based (Optuna).

    Comma lists make a grid over --lr, --width, --nhidden, --seed, --batch-size, --epochs and
    --set key=v1,v2. Ranges low:high[:lin|log|int|logint] are drawn by --search random, tpe,
    gp or cmaes for --trials N trials; --space FILE reads a Syne Tune config_space. --asha or
    --hyperband prune weak trials; --budget and --max-epochs-total stop new trials. Runs are
    named NAME-1, NAME-2, ...

    Example: rhea sweep --search tpe --trials 20 --lr 1e-5:1e-2:log --width 16:128:int --asha
    """
    from rhea_engine.errors import ConfigError
    from rhea_engine.runs import supervise
    from rhea_engine.runs.store import Store
    from rhea_engine.sweep import start

    root = resolve_home(home)
    if resume is not None or attach is not None:
        _resume(root, resume or attach or "", detach)
        return
    if random is not None and search not in (None, "random"):
        raise ConfigError(f"--random N is a random search; it does not go with --search {search}.")
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
        space_file=space,
        name=name,
        search="random" if random is not None else search,
        trials=random if random is not None else trials,
        search_seed=search_seed,
        objectives=objective or [],
        parallel=parallel,
        gpus=gpus,
        asha=asha,
        hyperband=hyperband,
        asha_min_epochs=asha_min_epochs,
        asha_eta=asha_eta,
        budget=budget,
        max_epochs_total=max_epochs_total,
        hard=hard,
        slurm=slurm_,
        partition=partition,
        time_limit=time_limit,
        gpus_per_run=gpus_per_run,
        account=account,
        cpus_per_run=cpus_per_run,
        tags=tags or [],
        cpus=cpus,
    )
    # every trial is validated before runs.db is even opened: a bad value writes nothing
    prepared = start.prepare(request, dry_run=dry_run)
    for note in prepared.notes:
        err_console.print(note)
    if dry_run:
        typer.echo(json.dumps(prepared.dry_run(), indent=2))
        return
    with Store(root) as store:
        started = start.create(store, prepared)
        if started.made_default_data:
            err_console.print(f"Generated the default synthetic data set in {root / 'data'}.")
        console.print(_started_line(started, prepared, partition))
        if detach:
            pid = supervise.start_detached(root, started.name)
            console.print(
                f"Supervising in the background (pid {pid}); follow with "
                f"`rhea ls --sweep {started.name}` or `rhea tui`."
            )
            return
        _supervise_foreground(store, started.name, started.options, started.total)


def _started_line(started: Any, prepared: Any, partition: str | None) -> str:
    where = (
        f" on Slurm partition {partition}"
        if started.options.slurm
        else f", {started.options.parallel} at a time"
    )
    if started.run_names:
        runs = f"{len(started.run_names)} runs {started.run_names[0]} .. {started.run_names[-1]}"
    else:
        count = f"{started.total} trials" if started.total else "trials until the budget is spent"
        runs = f"{prepared.spec['search']} search, {count} ({started.name}-1, ...)"
    return f"Sweep [bold]{started.name}[/]: {runs}{where}"


def _resume(root: Path, sweep_name: str, detach: bool) -> None:
    from rhea_engine.errors import SweepError
    from rhea_engine.runs import supervise
    from rhea_engine.runs.store import Store

    if not (root / "runs.db").exists():
        raise SweepError(f"{root} has no runs.db; there is no sweep '{sweep_name}' to resume.")
    with Store(root) as store:
        options = supervise.options_of(store, sweep_name)
        if detach:
            pid = supervise.start_detached(root, sweep_name)
            console.print(f"Supervising sweep {sweep_name} in the background (pid {pid}).")
            return
        spec = next(s["spec"] for s in store.sweeps() if s["name"] == sweep_name)
        _supervise_foreground(store, sweep_name, options, spec.get("trials"))


def _supervise_foreground(store: Any, sweep_name: str, options: Any, total: int | None) -> None:
    from rhea_engine.compare import differing_params
    from rhea_engine.runs import supervise

    shown = 0
    started = time.monotonic()
    with Live(console=console, auto_refresh=False, transient=False) as live:

        def on_tick(rows: list[Any], notes: list[str]) -> None:
            nonlocal shown
            for note in notes[shown:]:
                live.console.print(note)
            shown = len(notes)
            params = differing_params({r.name: r.config for r in rows})
            caption = _caption(rows, started, total)
            live.update(_runs_table(rows, params, f"sweep {sweep_name}", caption), refresh=True)

        supervisor = supervise.Supervisor(store, sweep_name, options, on_tick=on_tick)
        try:
            rows = supervisor.run()
        except KeyboardInterrupt:
            err_console.print(
                "Interrupted: the local trials were stopped with a checkpoint"
                + ("; the Slurm jobs keep running." if options.slurm else ".")
                + f" Continue with `rhea sweep --resume {sweep_name}`."
            )
            raise typer.Exit(130) from None
    if not console.is_terminal:
        console.line()
    _summary(sweep_name, rows, supervisor)


def _summary(sweep_name: str, rows: list[Any], supervisor: Any) -> None:
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
        + (f" The {supervisor.exhausted}." if supervisor.exhausted else "")
    )
    if len(supervisor.spec.get("objectives") or []) > 1:
        console.print(f"Trade-offs: `rhea compare sweep:{sweep_name} --pareto`.")
    if not done and not any(r.status == "pruned" for r in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("sweep")(handle_errors(sweep))
    app.command("compare")(handle_errors(compare))
    app.command("import")(handle_errors(import_))

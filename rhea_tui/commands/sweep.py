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


def _base_config(
    home: Path, config_file: Path | None, fixed: dict[str, Any], slurm_mode: bool
) -> dict[str, Any]:
    from rhea_engine import config as cfgmod
    from rhea_engine.runs.preflight import check_data_files, check_device

    base = cfgmod.resolve(config_file).to_dict()
    base.update(fixed)
    cfgmod.from_dict(base)  # validate the fixed values together
    base["database_list"] = check_data_files(base["database_list"], "--data", "asymptotic")
    base["stable_database_list"] = check_data_files(
        base["stable_database_list"], "--stable-data", "stable"
    )
    if not slurm_mode:
        check_device(base["device"])
    return base


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
    from rhea_engine import sweep as sweepmod
    from rhea_engine.errors import ConfigError, SlurmError, SweepError
    from rhea_engine.runs import slurm as slurmmod
    from rhea_engine.runs import supervise
    from rhea_engine.runs.store import Store

    root = resolve_home(home)
    if attach is not None:
        _attach(root, attach, detach)
        return
    values = {
        "lr": lr,
        "width": width,
        "nhidden": nhidden,
        "seed": seed,
        "batch_size": batch_size,
        "epochs": epochs,
        "data": data,
        "stable_data": stable_data,
        "device": device,
    }
    axes, ranges, fixed = sweepmod.parse_sweep_values(values, set_ or [], random is not None)
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel must be at least 1; got {parallel}.")
    gpu_list = [g.strip() for g in (gpus or "").split(",") if g.strip()]
    if any(not g.isdigit() for g in gpu_list):
        raise ConfigError(f"--gpus expects GPU indices such as 0,1; got '{gpus}'.")
    slurm_options = None
    if slurm_:
        if not partition or not time_limit:
            raise SlurmError("--slurm needs --partition P and --time HH:MM:SS.")
        slurmmod.parse_time(time_limit)
        if gpus_per_run < 0:
            raise SlurmError(f"--gpus-per-run must be 0 or more; got {gpus_per_run}.")
        slurm_options = slurmmod.SlurmOptions(
            partition, time_limit, gpus_per_run, account, cpus_per_run
        )
        if gpu_list:
            raise SlurmError("--gpus pins local trials to GPUs; on Slurm use --gpus-per-run K.")
    elif partition or time_limit or account:
        raise SlurmError("--partition, --time and --account only apply with --slurm.")
    base = _base_config(root, config_file, fixed, slurm_)
    # every trial is validated before runs.db is even opened: a bad value writes nothing
    plan = sweepmod.plan_sweep(name or "sweep", base, axes, ranges, random, search_seed)
    if asha:
        max_epochs = max(int(c["epochs"]) for c in plan.configs)
        if not sweepmod.asha_rungs(asha_min_epochs, asha_eta, max_epochs):
            raise ConfigError(
                f"--asha-min-epochs {asha_min_epochs} leaves no rung below the "
                f"{max_epochs} epochs of the runs; lower it."
            )
    if dry_run:
        labels = [*axes, *ranges]
        trials = [{d.label: o[d.keys[0]] for d in labels if d.keys[0] in o} for o in plan.trials]
        typer.echo(json.dumps({"trials": trials, "spec": plan.spec()}, indent=2))
        return
    if slurm_options is not None:
        slurmmod.check_partition(slurm_options.partition, slurm_options.gpus_per_run)
    with Store(root) as store:
        sweep_name = name or sweepmod.next_sweep_name(s["name"] for s in store.sweeps())
        plan.name = sweep_name
        if sweep_name in {s["name"] for s in store.sweeps()}:
            raise SweepError(f"A sweep named '{sweep_name}' already exists; choose another --name.")
        taken = {r.name for r in store.list_runs()} & set(plan.run_names())
        if taken:
            raise SweepError(
                f"A run named '{sorted(taken)[0]}' already exists; choose another --name."
            )
        if not base["database_list"] and not base["stable_database_list"]:
            from rhea_engine.runs.defaults import default_data

            asym, stable, made = default_data(root)
            if made:
                err_console.print(f"Generated the default synthetic data set in {root / 'data'}.")
            plan.configs = [
                {**c, "database_list": asym, "stable_database_list": stable} for c in plan.configs
            ]
        options = supervise.SweepOptions(
            parallel=parallel or (len(plan.configs) if slurm_ else max(1, len(gpu_list))),
            gpus=gpu_list,
            asha_min_epochs=asha_min_epochs if asha else None,
            asha_eta=asha_eta,
            slurm=slurm_options,
        )
        store.create_sweep(sweep_name, {**plan.spec(), "run": options.to_dict()})
        for run_name, run_config in zip(plan.run_names(), plan.configs, strict=True):
            store.create_run(run_config, name=run_name, sweep=sweep_name)
        console.print(
            f"Sweep [bold]{sweep_name}[/]: {len(plan.configs)} runs "
            f"{plan.run_names()[0]} .. {plan.run_names()[-1]}"
            + (f" on Slurm partition {partition}" if slurm_ else f", {options.parallel} at a time")
        )
        if detach:
            pid = supervise.start_detached(root, sweep_name)
            console.print(
                f"Supervising in the background (pid {pid}); follow with "
                f"`rhea ls --sweep {sweep_name}` or `rhea tui`."
            )
            return
        _supervise_foreground(store, sweep_name, options)


def _attach(root: Path, sweep_name: str, detach: bool) -> None:
    from rhea_engine.errors import SweepError
    from rhea_engine.runs import supervise
    from rhea_engine.runs.store import Store

    if not (root / "runs.db").exists():
        raise SweepError(f"{root} has no runs.db; there is no sweep '{sweep_name}' to attach to.")
    with Store(root) as store:
        known = [s["name"] for s in store.sweeps()]
        if sweep_name not in known:
            raise SweepError(
                f"There is no sweep '{sweep_name}' in {root}. Known sweeps: {', '.join(known) or 'none'}."
            )
        options = supervise.options_of(store, sweep_name)
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

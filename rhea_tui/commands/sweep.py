"""CLI commands: sweep (grid/random search, local or Slurm), compare, import."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from rhea_tui.common import HomeOpt, console, err_console, handle_errors, resolve_home


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ",".join(Path(str(v)).name for v in value)
    return str(value)


_SHORT = {"learning_rate": "lr", "random_seed": "seed", "batch_size": "batch",
          "dropout_probability": "dropout", "weight_decay": "wd"}


def _runs_table(rows: list[Any], params: dict[str, dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("run", "status"):
        table.add_column(column, no_wrap=True, min_width=9 if column == "status" else None)
    for column in ("epoch", *(_SHORT.get(p, p) for p in params), "train loss", "test loss", "max ELN"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        epoch = f"{row.last_epoch or 0}/{row.total_epochs or row.config.get('epochs', '?')}"
        table.add_row(
            row.name, row.status, epoch, *(_fmt(params[p].get(row.name)) for p in params),
            _fmt(row.last_train_loss), _fmt(row.last_test_loss), _fmt(row.max_eln_violation),
        )
    return table


def _base_config(home: Path, config_file: Path | None, fixed: dict[str, Any], slurm_mode: bool) -> dict[str, Any]:
    from rhea_engine import config as cfgmod
    from rhea_engine.runs.preflight import check_data_files, check_device

    base = cfgmod.resolve(config_file).to_dict()
    base.update(fixed)
    cfgmod.from_dict(base)  # validate the fixed values together
    base["database_list"] = check_data_files(base["database_list"], "--data")
    base["stable_database_list"] = check_data_files(base["stable_database_list"], "--stable-data")
    if not slurm_mode:
        check_device(base["device"])
    return base


def sweep(
    lr: Annotated[str | None, typer.Option(help="learning_rate: 1e-4,1e-5 (or 1e-6:1e-3:log with --random).")] = None,
    width: Annotated[str | None, typer.Option(help="All widths: 32,64 (or 16:128:int).")] = None,
    nhidden: Annotated[str | None, typer.Option(help="All nhidden: 0,1,2.")] = None,
    seed: Annotated[str | None, typer.Option(help="random_seed: 42,43.")] = None,
    batch_size: Annotated[str | None, typer.Option(help="batch_size: 1024,4096.")] = None,
    epochs: Annotated[str | None, typer.Option(help="Epochs per run.")] = None,
    data: Annotated[str | None, typer.Option(help="Asymptotic HDF5 files (comma-separated).")] = None,
    stable_data: Annotated[str | None, typer.Option(help="Stable HDF5 files (comma-separated).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML config file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=v1,v2 (any config key).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Sweep name (default sweep1, sweep2, ...).")] = None,
    random: Annotated[int | None, typer.Option("--random", help="Random search with N trials; ranges low:high[:lin|log|int].")] = None,
    search_seed: Annotated[int, typer.Option(help="Seed of the random search.")] = 0,
    parallel: Annotated[int | None, typer.Option(help="Trials running at once (default 1; Slurm: all).")] = None,
    gpus: Annotated[str | None, typer.Option(help="GPUs to pin trials to, e.g. 0,1 (CUDA_VISIBLE_DEVICES).")] = None,
    detach: Annotated[bool, typer.Option(help="Supervise in the background and return.")] = False,
    asha: Annotated[bool, typer.Option(help="Early-stop weak trials (ASHA on test loss).")] = False,
    asha_min_epochs: Annotated[int, typer.Option(help="First ASHA rung r (epochs).")] = 1,
    asha_eta: Annotated[int, typer.Option(help="ASHA reduction factor eta (rungs r, r*eta, ...).")] = 3,
    slurm_: Annotated[bool, typer.Option("--slurm", help="Submit each trial as a Slurm job.")] = False,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    time_limit: Annotated[str | None, typer.Option("--time", help="Slurm time limit per run, HH:MM:SS.")] = None,
    gpus_per_run: Annotated[int, typer.Option(help="GPUs per Slurm job.")] = 1,
    account: Annotated[str | None, typer.Option(help="Slurm account.")] = None,
    cpus_per_run: Annotated[int | None, typer.Option(help="CPUs per Slurm job.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the trials (as JSON) and create nothing.")] = False,
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
    values = {"lr": lr, "width": width, "nhidden": nhidden, "seed": seed, "batch_size": batch_size,
              "epochs": epochs, "data": data, "stable_data": stable_data, "device": device}
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
        slurm_options = slurmmod.SlurmOptions(partition, time_limit, gpus_per_run, account, cpus_per_run)
    elif partition or time_limit or account:
        raise SlurmError("--partition, --time and --account only apply with --slurm.")
    base = _base_config(root, config_file, fixed, slurm_)
    # every trial is validated before runs.db is even opened: a bad value writes nothing
    plan = sweepmod.plan_sweep(name or "sweep", base, axes, ranges, random, search_seed)
    if asha:
        max_epochs = max(int(c["epochs"]) for c in plan.configs)
        if not sweepmod.asha_rungs(asha_min_epochs, asha_eta, max_epochs):
            raise ConfigError(f"--asha-min-epochs {asha_min_epochs} leaves no rung below the "
                              f"{max_epochs} epochs of the runs; lower it.")
    if dry_run:
        labels = [*axes, *ranges]
        trials = [{d.label: o[d.keys[0]] for d in labels if d.keys[0] in o} for o in plan.trials]
        typer.echo(json.dumps({"trials": trials, "spec": plan.spec()}, indent=2))
        return
    if slurm_options is not None:
        slurmmod.check_partition(slurm_options.partition)
    with Store(root) as store:
        sweep_name = name or sweepmod.next_sweep_name(s["name"] for s in store.sweeps())
        plan.name = sweep_name
        if sweep_name in {s["name"] for s in store.sweeps()}:
            raise SweepError(f"A sweep named '{sweep_name}' already exists; choose another --name.")
        taken = {r.name for r in store.list_runs()} & set(plan.run_names())
        if taken:
            raise SweepError(f"A run named '{sorted(taken)[0]}' already exists; choose another --name.")
        if not base["database_list"] and not base["stable_database_list"]:
            from rhea_engine.runs.defaults import default_data

            asym, stable, made = default_data(root)
            if made:
                err_console.print(f"Generated the default synthetic data set in {root / 'data'}.")
            plan.configs = [{**c, "database_list": asym, "stable_database_list": stable} for c in plan.configs]
        options = supervise.SweepOptions(
            parallel=parallel or (len(plan.configs) if slurm_ else 1), gpus=gpu_list,
            asha_min_epochs=asha_min_epochs if asha else None, asha_eta=asha_eta, slurm=slurm_options,
        )
        store.create_sweep(sweep_name, {**plan.spec(), "run": options.to_dict()})
        for run_name, run_config in zip(plan.run_names(), plan.configs, strict=True):
            store.create_run(run_config, name=run_name, sweep=sweep_name)
        console.print(f"Sweep [bold]{sweep_name}[/]: {len(plan.configs)} runs "
                      f"{plan.run_names()[0]} .. {plan.run_names()[-1]}"
                      + (f" on Slurm partition {partition}" if slurm_ else f", {options.parallel} at a time"))
        if detach:
            pid = supervise.start_detached(root, sweep_name)
            console.print(f"Supervising in the background (pid {pid}); follow with "
                          f"`rhea ls --sweep {sweep_name}` or `rhea tui`.")
            return
        _supervise_foreground(store, sweep_name, options)


def _supervise_foreground(store: Any, sweep_name: str, options: Any) -> None:
    from rhea_engine.compare import differing_params
    from rhea_engine.runs import supervise

    shown = 0
    params = differing_params({r.name: r.config for r in store.list_runs(sweep=sweep_name)})

    with Live(console=console, auto_refresh=False, transient=False) as live:
        def on_tick(rows: list[Any], notes: list[str]) -> None:
            nonlocal shown
            for note in notes[shown:]:
                live.console.print(note)
            shown = len(notes)
            live.update(_runs_table(rows, params, f"sweep {sweep_name}"), refresh=True)

        supervisor = supervise.Supervisor(store, sweep_name, options, on_tick=on_tick)
        try:
            rows = supervisor.run()
        except KeyboardInterrupt:
            err_console.print("Interrupted: the local trials were stopped with a checkpoint"
                              + ("; the Slurm jobs keep running." if options.slurm else "."))
            raise typer.Exit(130) from None
    if not console.is_terminal:
        console.line()
    done = [r for r in rows if r.status == "completed"]
    best = min((r for r in rows if r.best_test_loss is not None), key=lambda r: r.best_test_loss, default=None)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    console.print(f"Sweep {sweep_name} finished: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "."
                  + (f" Best test loss {best.best_test_loss:.4g} in {best.name}." if best else ""))
    if not done and not any(r.status == "pruned" for r in rows):
        raise typer.Exit(1)


# --- compare -----------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _plot(result: dict[str, Any], metric: str, width: int, height: int) -> str | None:
    import plotext as plt

    from rhea_engine.compare import log_safe

    plt.clf()
    plt.plotsize(width, height)
    drawn = False
    for run in result["runs"]:
        points = log_safe([(e, v) for e, v in result["series"].get(run, {}).get(metric, []) if v is not None])
        if points:
            plt.plot([e for e, _ in points], [v for _, v in points], label=run, marker="braille")
            drawn = True
    if not drawn:
        return None
    plt.yscale("log")
    plt.title(f"{metric} (log)")
    plt.xlabel("epoch")
    plt.theme("clear")
    return str(plt.build())


def compare(
    handles: Annotated[list[str], typer.Argument(help="Runs, or sweep:NAME.", show_default=False)],
    metric: Annotated[str, typer.Option(help="Metric for the last/best columns (and plotted).")] = "test_loss",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables and plots.")] = False,
    plots: Annotated[bool, typer.Option(help="Draw the loss and ELN-violation plots.")] = True,
    home: HomeOpt = None,
) -> None:
    """Compare runs: differing parameters, last/best metrics with baselines, overlaid curves.

    Example: rhea compare sweep:sweep1 --metric test_loss
    """
    from rhea_engine.compare import PLOT_METRICS, compare_runs
    from rhea_engine.errors import RunError
    from rhea_engine.runs.store import Store

    with Store(resolve_home(home)) as store:
        width = max(40, min(console.width, 160) - 4)
        result = compare_runs(store, handles, metric, width=width)
        if not result["runs"]:
            raise RunError(f"Nothing to compare: {' '.join(handles)} holds no runs.")
        if all(not per.get(metric) for per in result["series"].values()):
            names = sorted({n for r in result["runs"] for n in store.metric_names(r)})
            if names or metric != "test_loss":
                raise RunError(f"No run here has the metric '{metric}'. Known metrics: "
                               f"{', '.join(names) or 'none yet'}.")
    if as_json:
        typer.echo(json.dumps(_json_safe(result), indent=2))
        return
    params = result["params"]
    if params:
        table = Table(title="Parameters that differ", title_justify="left", header_style="bold")
        table.add_column("run")
        for key in params:
            table.add_column(key, justify="right")
        for run in result["runs"]:
            table.add_row(run, *(_fmt(params[k].get(run)) for k in params))
        console.print(table)
    else:
        console.print("The runs have the same parameters.")
    baselines = result["baselines"]
    table = Table(title=f"Metrics (chosen: {metric})", title_justify="left", header_style="bold")
    columns = ["run", "status", "epochs", "last train", "last test", "best test (epoch)",
               "max ELN", f"last {metric}", f"best {metric}", *baselines]
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "status") else "right")
    for entry in result["table"]:
        best_test = _fmt(entry["best_test_loss"])
        if entry["best_test_epoch"] is not None:
            best_test += f" ({entry['best_test_epoch']})"
        table.add_row(
            entry["run"], entry["status"], _fmt(entry["epochs"]), _fmt(entry["last_train_loss"]),
            _fmt(entry["last_test_loss"]), best_test, _fmt(entry["max_ELN_violation"]),
            _fmt(entry["metric_last"]), _fmt(entry["metric_best"]),
            *(_fmt(entry["evaluation"].get(b)) for b in baselines),
        )
    console.print(table)
    if plots:
        for name in dict.fromkeys([*PLOT_METRICS, metric]):
            text = _plot(result, name, width, 15)
            if text:
                console.print(text, markup=False, highlight=False)


# --- import ------------------------------------------------------------------------------


def import_(
    directory: Annotated[Path, typer.Argument(help="An upstream run folder, or a folder of them.")],
    name: Annotated[str | None, typer.Option(help="Run name (one folder) or sweep name (several).")] = None,
    link: Annotated[bool, typer.Option(help="Reference the upstream checkpoints instead of copying them.")] = False,
    home: HomeOpt = None,
) -> None:
    """Import upstream run folders (parameters.txt, loss.dat, model*_*.pt) as completed runs.

    A folder of run folders becomes a sweep named after it.

    Example: rhea import ~/old-runs/lr_scan
    """
    from rhea_engine.importer import import_runs
    from rhea_engine.runs.store import Store

    with Store(resolve_home(home)) as store:
        names = import_runs(store, directory, name=name, copy_checkpoints=not link)
        rows = [store.get_run(n) for n in names]
    sweep = rows[0].sweep if rows else None
    console.print(f"Imported {len(rows)} run(s) from {directory}"
                  + (f" as sweep {sweep} (compare with `rhea compare sweep:{sweep}`)" if sweep else "")
                  + ": " + ", ".join(f"{r.name} ({r.last_epoch or 0} epochs)" for r in rows))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("sweep")(handle_errors(sweep))
    app.command("compare")(handle_errors(compare))
    app.command("import")(handle_errors(import_))

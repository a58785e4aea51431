"""CLI commands: compare (runs or sweeps side by side) and import (upstream run folders)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from rhea_tui.common import HomeOpt, console, resolve_home


def fmt(value: Any) -> str:
    """A table cell: 3 significant digits, '-' for missing, file names for path lists."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ",".join(Path(str(v)).name for v in value)
    return str(value)


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
        points = log_safe(
            [(e, v) for e, v in result["series"].get(run, {}).get(metric, []) if v is not None]
        )
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
    metric: Annotated[
        str, typer.Option(help="Metric for the last/best columns (and plotted).")
    ] = "test_loss",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of tables and plots.")
    ] = False,
    plots: Annotated[bool, typer.Option(help="Draw the loss and ELN-violation plots.")] = True,
    home: HomeOpt = None,
) -> None:
    """Compare runs: differing parameters, last/best metrics with baselines, overlaid curves.

    Example: rhea compare sweep:sweep1 --metric test_loss
    """
    from rhea_engine.compare import PLOT_METRICS, compare_runs
    from rhea_engine.errors import RunError, StoreError
    from rhea_engine.runs.store import Store

    root = resolve_home(home)
    if not (root / "runs.db").exists() and not (root / "runs").is_dir():
        raise StoreError(
            f"{root} is not a Rhea home (no runs.db or runs/); give --home or set RHEA_HOME."
        )
    with Store(root) as store:
        width = max(40, min(console.width, 160) - 4)
        result = compare_runs(store, handles, metric, width=width)
        if not result["runs"]:
            raise RunError(f"Nothing to compare: {' '.join(handles)} holds no runs.")
        if all(not per.get(metric) for per in result["series"].values()):
            names = sorted({n for r in result["runs"] for n in store.metric_names(r)})
            if names or metric != "test_loss":
                raise RunError(
                    f"No run here has the metric '{metric}'. Known metrics: "
                    f"{', '.join(names) or 'none yet'}."
                )
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
            table.add_row(run, *(fmt(params[k].get(run)) for k in params))
        console.print(table)
    else:
        console.print("The runs have the same parameters.")
    table = Table(title=f"Metrics (chosen: {metric})", title_justify="left", header_style="bold")
    columns = [
        "run",
        "status",
        "epochs",
        "last train",
        "last test",
        "best test (epoch)",
        "max ELN",
        f"last {metric}",
        f"best {metric}",
    ]
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "status") else "right")
    for entry in result["table"]:
        best_test = fmt(entry["best_test_loss"])
        if entry["best_test_epoch"] is not None:
            best_test += f" ({entry['best_test_epoch']})"
        table.add_row(
            entry["run"],
            entry["status"],
            fmt(entry["epochs"]),
            fmt(entry["last_train_loss"]),
            fmt(entry["last_test_loss"]),
            best_test,
            fmt(entry["max_ELN_violation"]),
            fmt(entry["metric_last"]),
            fmt(entry["metric_best"]),
        )
    console.print(table)
    evaluation = result["evaluation"]
    if evaluation["rows"]:
        table = Table(
            title="Final evaluation: model vs Box3D vs identity",
            title_justify="left",
            header_style="bold",
        )
        table.add_column("")
        for quantity in evaluation["quantities"]:
            table.add_column(quantity.replace("_", " "), justify="right")
        for row in evaluation["rows"]:
            style = None if row["source"] == "model" else "dim"
            table.add_row(
                row["label"],
                *(fmt(row["values"][q]) for q in evaluation["quantities"]),
                style=style,
            )
        console.print(table)
    if plots:
        for name in dict.fromkeys([*PLOT_METRICS, metric]):
            text = _plot(result, name, width, 15)
            if text:
                console.print(Text.from_ansi(text))


# --- import ------------------------------------------------------------------------------


def import_(
    directory: Annotated[Path, typer.Argument(help="An upstream run folder, or a folder of them.")],
    name: Annotated[
        str | None, typer.Option(help="Run name (one folder) or sweep name (several).")
    ] = None,
    link: Annotated[
        bool, typer.Option(help="Reference the upstream checkpoints instead of copying them.")
    ] = False,
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
    console.print(
        f"Imported {len(rows)} run(s) from {directory}"
        + (f" as sweep {sweep} (compare with `rhea compare sweep:{sweep}`)" if sweep else "")
        + ": "
        + ", ".join(f"{r.name} ({r.last_epoch or 0} epochs)" for r in rows)
    )

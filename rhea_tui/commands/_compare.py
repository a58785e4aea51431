"""CLI command: compare (runs or sweeps side by side: parameters, metrics, evaluation, plots)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from rhea_engine.strict_json import json_safe
from rhea_tui.common import HomeOpt, WhereOpt, console, die, resolve_home
from rhea_tui.format import MAX_ELN_LABEL, TRAIN_ELN_MARK, cell, compact, epoch_ticks, value_ticks


def _plot(result: dict[str, Any], metric: str, width: int, height: int) -> str | None:
    import plotext as plt

    from rhea_engine.compare import log_safe

    plt.clf()
    plt.plotsize(width, height)
    epochs: list[int] = []
    values: list[float] = []
    for run in result["runs"]:
        points = log_safe(
            [(e, v) for e, v in result["series"].get(run, {}).get(metric, []) if v is not None]
        )
        if points:
            plt.plot([e for e, _ in points], [v for _, v in points], label=run, marker="braille")
            epochs += (points[0][0], points[-1][0])
            values += (min(v for _, v in points), max(v for _, v in points))
    if not epochs:
        return None
    plt.yscale("log")
    plt.xticks([float(e) for e in epoch_ticks(min(epochs), max(epochs))])
    y_ticks = value_ticks(min(values), max(values), max(2, min(5, (height - 4) // 2)), log=True)
    plt.yticks(y_ticks, [compact(v, 3) for v in y_ticks])
    plt.title(f"{metric} (log)")
    plt.xlabel("epoch")
    plt.theme("clear")
    return str(plt.build())


def params_table(result: dict[str, Any]) -> Table | str:
    """The parameters that differ (or a sentence when none does).

    One row per run; one row per parameter when there are more parameters than runs, so that
    many differing parameters (runs imported from both upstream branches) stay readable.
    """
    params = result["params"]
    if not params:
        return "The runs have the same parameters."
    table = Table(title="Parameters that differ", title_justify="left", header_style="bold")
    if len(params) > len(result["runs"]):
        table.add_column("parameter")
        for run in result["runs"]:
            table.add_column(run, justify="right")
        for key, values in params.items():
            table.add_row(key, *(cell(values.get(run)) for run in result["runs"]))
        return table
    table.add_column("run")
    for key in params:
        table.add_column(key, justify="right")
    for run in result["runs"]:
        table.add_row(run, *(cell(params[k].get(run)) for k in params))
    return table


# The fixed columns that already show a metric's last or best value: the chosen metric's
# own columns are left out when they would repeat one of these.
_SHOWN_ALREADY = {("train_loss", "last"), ("test_loss", "last"), ("test_loss", "best")}


def metrics_table(result: dict[str, Any], metric: str) -> Table:
    """Status, epochs, last/best losses, max ELN and the chosen metric of each run."""
    table = Table(title=f"Metrics (chosen: {metric})", title_justify="left", header_style="bold")
    chosen = [which for which in ("last", "best") if (metric, which) not in _SHOWN_ALREADY]
    columns = [
        "run",
        "status",
        "epochs",
        "last train",
        "last test",
        "best test (epoch)",
        MAX_ELN_LABEL,
        *(f"{which} {metric}" for which in chosen),
    ]
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "status") else "right")
    for entry in result["table"]:
        best_test = cell(entry["best_test_loss"])
        if entry["best_test_epoch"] is not None:
            best_test += f" ({entry['best_test_epoch']})"
        table.add_row(
            entry["run"],
            entry["status"],
            cell(entry["epochs"]),
            cell(entry["last_train_loss"]),
            cell(entry["last_test_loss"]),
            best_test,
            cell(entry["max_ELN_violation"])
            + (TRAIN_ELN_MARK if entry.get("max_ELN_metric") == "ELN_violation" else ""),
            *(cell(entry[f"metric_{which}"]) for which in chosen),
        )
    return table


def evaluation_table(result: dict[str, Any]) -> Table | None:
    """The final evaluations: the model of each run, then the Box3D and identity baselines."""
    evaluation = result["evaluation"]
    if not evaluation["rows"]:
        return None
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
            row["label"], *(cell(row["values"][q]) for q in evaluation["quantities"]), style=style
        )
    return table


def compare(
    handles: Annotated[
        list[str] | None,
        typer.Argument(help="Runs, or sweep:NAME (with --where: optional).", show_default=False),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Metric for the last/best columns (and plotted).")
    ] = "test_loss",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of tables and plots.")
    ] = False,
    plots: Annotated[bool, typer.Option(help="Draw the loss and ELN-violation plots.")] = True,
    pareto: Annotated[
        bool, typer.Option(help="sweep:NAME only: its Pareto front over the objectives.")
    ] = False,
    importance: Annotated[
        bool, typer.Option(help="sweep:NAME only: which parameters mattered (fANOVA).")
    ] = False,
    objective: Annotated[
        list[str] | None,
        typer.Option(help="Objectives for --pareto/--importance (default: the sweep's own)."),
    ] = None,
    where: WhereOpt = None,
    home: HomeOpt = None,
) -> None:
    """Compare runs: differing parameters, last/best metrics with baselines, overlaid curves.

    With --where, the runs given (or all runs, when none is given) that match the filter.

    Example: rhea compare sweep:sweep1 --where "best_test_loss < 0.5" (or --pareto, --importance)
    """
    from rhea_engine.compare import PLOT_METRICS, compare_home
    from rhea_engine.errors import RunError

    if not handles and where is None:
        raise RunError("Name the runs to compare (run3 run4, or sweep:NAME), or give --where.")
    if objective and not (pareto or importance):
        die(
            "--objective chooses the objectives of --pareto or --importance; add one of them "
            "(e.g. rhea compare sweep:NAME --pareto --objective test_loss).",
            title="Usage error",
        )
    if pareto or importance:
        if where is not None:
            raise RunError("--pareto and --importance take a whole sweep; leave out --where.")
        from rhea_tui.commands._tradeoffs import tradeoffs

        tradeoffs(
            resolve_home(home), handles or [], pareto, importance, objective or [], as_json, plots
        )
        return

    width = max(40, min(console.width, 160) - 4)
    result = compare_home(resolve_home(home), handles or [], metric, width=width, where=where)
    if as_json:
        typer.echo(json.dumps(json_safe(result), indent=2))
        return
    console.print(params_table(result))
    console.print(metrics_table(result, metric))
    evaluation = evaluation_table(result)
    if evaluation is not None:
        console.print(evaluation)
    if plots:
        for name in dict.fromkeys([*PLOT_METRICS, metric]):
            text = _plot(result, name, width, 15)
            if text:
                console.print(Text.from_ansi(text))

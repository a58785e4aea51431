"""`rhea compare sweep:NAME --pareto | --importance`: trade-offs and parameter importance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from rhea_tui.common import console
from rhea_tui.format import FRONT_MARK, FRONT_NOTE, cell, left_out_text, objective_label, sig


def _number(value: Any) -> str:
    return cell(value, lambda v: sig(v, 4))


def _plot(result: dict[str, Any], width: int, height: int) -> str | None:
    import plotext as plt

    trials = result["trials"]
    if not trials:
        return None
    x_name, y_name = result["objectives"][:2]
    plt.clf()
    plt.plotsize(width, height)
    others = [t for t in trials if not t["front"]]
    front = sorted((t for t in trials if t["front"]), key=lambda t: t["values"][0])
    if others:
        plt.scatter(
            [t["values"][0] for t in others],
            [t["values"][1] for t in others],
            marker="•",
            color="gray",
        )
    xs, ys = [t["values"][0] for t in front], [t["values"][1] for t in front]
    plt.plot(xs, ys, marker="braille", color="red")  # the front, joined
    plt.scatter(xs, ys, marker=FRONT_MARK, color="red")
    for axis, index in (("x", 0), ("y", 1)):
        values = [t["values"][index] for t in trials]
        if min(values) > 0 and max(values) / min(values) > 20:
            plt.xscale("log") if axis == "x" else plt.yscale("log")
    plt.xlabel(x_name)
    plt.ylabel(y_name)
    plt.title(f"sweep {result['sweep']}: {FRONT_MARK} Pareto front, • dominated (lower is better)")
    plt.theme("clear")
    return str(plt.build())


def show_pareto(result: dict[str, Any], as_json: bool, plots: bool) -> None:
    """The trials with their objective values, the best trade-offs marked, and a plot."""
    if as_json:
        console.print_json(json.dumps(result))
        return
    names = result["objectives"]
    table = Table(
        title=f"Pareto front of sweep {result['sweep']} ({FRONT_NOTE})",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("")
    table.add_column("run")
    for name, direction in zip(names, result["directions"], strict=True):
        table.add_column(objective_label(name, direction), justify="right")
    params = list(result["trials"][0]["params"]) if result["trials"] else []
    for param in params:
        table.add_column(param, justify="right")
    ordered = sorted(result["trials"], key=lambda t: (not t["front"], t["values"][0]))
    for trial in ordered:
        table.add_row(
            FRONT_MARK if trial["front"] else "",
            trial["run"],
            *(_number(v) for v in trial["values"]),
            *(_number(trial["params"].get(p)) for p in params),
            style="bold" if trial["front"] else "dim",
        )
    console.print(table)
    if result["left_out"]:
        console.print(left_out_text(result["left_out"]))
    if plots:
        text = _plot(result, max(40, min(console.width, 120) - 4), 20)
        if text:
            console.print(Text.from_ansi(text))


def show_importance(result: dict[str, Any], as_json: bool) -> None:
    """One column per objective: each parameter's share of the explained variance."""
    if as_json:
        console.print_json(json.dumps(result))
        return
    table = Table(
        title=f"Parameter importance in sweep {result['sweep']} (fANOVA over "
        f"{result['trials']} completed trials)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("parameter")
    names = result["objectives"]
    for name in names:
        table.add_column(name, justify="right")
        table.add_column("", no_wrap=True)
    first = result["importance"][names[0]]
    params = sorted(first, key=lambda p: -first[p])
    for param in params:
        cells: list[str] = []
        for name in names:
            share = result["importance"][name].get(param, 0.0)
            cells += [f"{share:.2f}", "█" * int(round(share * 20))]
        table.add_row(param, *cells)
    console.print(table)


def tradeoffs(
    root: Path,
    handles: list[str],
    pareto: bool,
    importance: bool,
    objectives: list[str],
    as_json: bool,
    plots: bool,
) -> None:
    """`compare sweep:NAME --pareto | --importance`: one engine call each, then rendering."""
    from rhea_engine.errors import SweepError
    from rhea_engine.pareto import sweep_tradeoffs
    from rhea_engine.runs.store import Store
    from rhea_engine.sweep.importance import param_importance

    if len(handles) != 1 or not handles[0].startswith("sweep:"):
        raise SweepError(
            "--pareto and --importance look at one sweep: give it as sweep:NAME "
            "(for example `rhea compare sweep:sweep1 --pareto`)."
        )
    name = handles[0][len("sweep:") :]
    with Store.open_existing(root) as store:
        store.resolve_handles(handles)  # names the known sweeps if this one is not there
        if pareto:
            show_pareto(sweep_tradeoffs(store, name, objectives or None), as_json, plots)
        if importance:
            show_importance(param_importance(store, name, objectives or None), as_json)

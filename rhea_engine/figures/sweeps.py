"""Sweep figures: a final metric against a parameter, and the Pareto front of several objectives."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rhea_engine.errors import PlotError
from rhea_engine.figures.curves import (
    axes_grid,
    explain_colors,
    fmt_value,
    grid_shape,
    run_colors,
)
from rhea_engine.figures.data import (
    PlotOptions,
    RunData,
    final_value,
    is_number,
    parameter_values,
    pareto_front,
)
from rhea_engine.figures.style import PALETTE, gid, new_figure


def _positions(values: Mapping[str, Any]) -> tuple[dict[str, float], list[str] | None]:
    """x positions: the numbers themselves, or category indices (with their labels)."""
    if all(is_number(v) for v in values.values()):
        return {run: float(v) for run, v in values.items()}, None
    labels = sorted({fmt_value(v) for v in values.values()})
    return {run: float(labels.index(fmt_value(v))) for run, v in values.items()}, labels


def final_figure(
    runs: Sequence[RunData],
    metrics: Sequence[str],
    versus: str,
    options: PlotOptions,
    color_by: str | None,
) -> Any:
    """Each metric's last (or best) value against the parameter `versus`, one run a point.

    Runs that share the `color_by` value are joined by a line in order of `versus`.
    """
    xs, categories = _positions(parameter_values(runs, versus))
    groups = parameter_values(runs, color_by) if color_by else {run.name: "" for run in runs}
    coloring = run_colors(runs, color_by) if color_by else None
    figure = new_figure(options.style, *grid_shape(len(metrics), options.style))
    axes = axes_grid(figure, len(metrics), options.style, sharex=True)
    for ax, metric in zip(axes, metrics, strict=True):
        drawn = 0
        for group in dict.fromkeys(map(fmt_value, groups.values())):
            members = [run for run in runs if fmt_value(groups[run.name]) == group]
            points = sorted(
                (xs[run.name], value, run.name)
                for run in members
                if (value := final_value(run.series.get(metric, []), options.at)) is not None
                and (value > 0 or not options.log)
            )
            if not points:
                continue
            color = coloring.colors[points[0][2]] if coloring else PALETTE[0]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                markersize=4,
                linestyle="-" if len(points) > 1 else "none",
                color=color,
                gid=gid("points", metric, group or "all"),
            )
            drawn += len(points)
        if not drawn:
            raise PlotError(f"No run to plot has a finite value of '{metric}'.")
        ax.set_title(f"{metric.replace('_', ' ')} ({options.at})")
        ax.set_xlabel(versus)
        if options.log:
            ax.set_yscale("log")
        _x_ticks(ax, xs, categories)
    if coloring is not None:
        explain_colors(figure, axes, coloring)
    return figure


def _x_ticks(ax: Any, xs: Mapping[str, float], categories: list[str] | None) -> None:
    """Category names, or the parameter's own values (log spaced when they span decades)."""
    from matplotlib.ticker import NullLocator

    if categories is not None:
        ax.set_xticks(range(len(categories)), categories)
        return
    values = sorted(set(xs.values()))
    if min(values) > 0 and max(values) / min(values) >= 10:
        ax.set_xscale("log")
    if len(values) <= 8:  # the swept values themselves, not a tick every decade
        ax.set_xticks(values, [fmt_value(v) for v in values])
        ax.xaxis.set_minor_locator(NullLocator())


def pareto_figure(
    objectives: Sequence[str],
    values: Mapping[str, Sequence[float]],
    maximize: Sequence[bool] | None = None,
    *,
    style: str = "default",
    log: bool = True,
) -> Any:
    """The trade-off between two or more objectives, with the non-dominated runs marked.

    `values` maps a run (or trial) name to one value per objective, in the order of
    `objectives`; every objective is minimised unless `maximize` says otherwise. With more
    than two objectives, each pair gets a panel; the front is the one of all objectives.
    """
    maximize = list(maximize) if maximize is not None else [False] * len(objectives)
    if len(objectives) < 2 or len(maximize) != len(objectives):
        raise PlotError(
            "A Pareto front needs at least two objectives (--objective M, repeated), "
            f"got {len(objectives)}."
        )
    names = list(values)
    if len(names) < 2:
        raise PlotError(
            f"A Pareto front needs at least two runs with every objective; {len(names)} "
            f"ha{'s' if len(names) == 1 else 've'} all of {', '.join(objectives)}."
        )
    points = [list(values[name]) for name in names]
    front = set(pareto_front(points, maximize))
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    figure = new_figure(style, *grid_shape(len(pairs), style), 2.4 if style == "paper" else 3.2)
    axes = axes_grid(figure, len(pairs), style)
    for ax, pair in zip(axes, pairs, strict=True):
        _pareto_panel(ax, names, points, front, pair, maximize, objectives, log)
    return figure


def _pareto_panel(
    ax: Any,
    names: list[str],
    points: list[list[float]],
    front: set[int],
    pair: tuple[int, int],
    maximize: Sequence[bool],
    objectives: Sequence[str],
    log: bool,
) -> None:
    """Objective i against j: dominated runs grey, the front named (a staircase for two)."""
    i, j = pair
    others = [k for k in range(len(names)) if k not in front]
    ax.scatter(
        [points[k][i] for k in others],
        [points[k][j] for k in others],
        s=14,
        color="0.6",
        label="dominated",
        gid=gid("points", "dominated"),
    )
    # from the best x on: the staircase bounds what the front dominates
    ordered = sorted(front, key=lambda k: (-1 if maximize[i] else 1) * points[k][i])
    staircase = len(objectives) == 2
    ax.plot(
        [points[k][i] for k in ordered],
        [points[k][j] for k in ordered],
        marker="o",
        markersize=4,
        drawstyle="steps-post" if staircase else "default",
        linestyle="-" if staircase else "none",
        color=PALETTE[1],
        label="Pareto front",
        gid=gid("pareto", "front"),
    )
    for k in ordered:
        ax.annotate(
            names[k],
            (points[k][i], points[k][j]),
            fontsize="x-small",
            xytext=(3, 3),
            textcoords="offset points",
        )
    for axis, index in ((ax.xaxis, i), (ax.yaxis, j)):
        better = "higher is better" if maximize[index] else "lower is better"
        axis.set_label_text(f"{objectives[index]} ({better})")
    if log:
        for setter, index in ((ax.set_xscale, i), (ax.set_yscale, j)):
            column = [p[index] for p in points]
            if min(column) > 0 and max(column) / min(column) >= 10:
                setter("log")
    ax.legend(loc="best")


def pareto_of_runs(
    runs: Sequence[RunData], objectives: Sequence[tuple[str, bool]], options: PlotOptions
) -> Any:
    """`pareto_figure` over runs: metrics at their last/best value, else evaluation numbers."""
    from rhea_engine.figures.data import objective_values

    names = [name for name, _ in objectives]
    values = objective_values(runs, names, options.at)
    values = {run: v for run, v in values.items() if all(math.isfinite(x) for x in v)}
    return pareto_figure(
        names, values, [up for _, up in objectives], style=options.style, log=options.log
    )

"""Training curves: panels of metrics with the runs overlaid, or one small panel per run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rhea_engine.compare import Series, differing_params, log_safe
from rhea_engine.figures.data import (
    Panel,
    PlotOptions,
    RunData,
    is_number,
    is_train_metric,
    parameter_values,
    smooth,
    time_unit,
)
from rhea_engine.figures.style import COLORMAP, PALETTE, gid, new_figure

MAX_LEGEND_RUNS = 20
MAX_CATEGORIES = 8  # numeric parameters with more values get a colour map and a colour bar


@dataclass
class Coloring:
    """Colours of the runs, and how to explain them (legend entries or a colour bar)."""

    colors: dict[str, Any]
    entries: list[tuple[str, Any]] = field(default_factory=list)  # (label, colour)
    mappable: Any = None  # a ScalarMappable for a colour bar
    label: str = ""
    linestyles: dict[str, Any] = field(default_factory=dict)  # legend label -> line style


def fmt_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def run_colors(
    runs: Sequence[RunData], param: str | None, labels: dict[str, str] | None = None
) -> Coloring:
    """By run (no parameter; legend `labels`), by the values of a parameter (a legend entry
    each), or, past MAX_CATEGORIES numeric values, along a colour map with a colour bar."""
    import matplotlib
    from matplotlib.colors import LogNorm, Normalize

    cmap = matplotlib.colormaps[COLORMAP]
    if param is None:
        colors: dict[str, Any]
        if len(runs) <= len(PALETTE):
            colors = {run.name: PALETTE[i] for i, run in enumerate(runs)}
        else:
            colors = {run.name: cmap(i / max(1, len(runs) - 1)) for i, run in enumerate(runs)}
        names = labels or {}
        entries = [(names.get(run, run), c) for run, c in colors.items()]
        return Coloring(colors, entries if len(runs) <= MAX_LEGEND_RUNS else [])
    values = parameter_values(runs, param)
    numeric = [v for v in values.values() if is_number(v)]
    if len(numeric) == len(values) and len(set(numeric)) > MAX_CATEGORIES:
        low, high = min(numeric), max(numeric)
        log = low > 0 and high / low >= 10
        norm = LogNorm(low, high) if log else Normalize(low, high)
        mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        # the ends of viridis stay clear of white and black
        shades = {run: cmap(0.05 + 0.85 * float(norm(v))) for run, v in values.items()}
        return Coloring(dict(shades), [], mappable, param)
    ordered = sorted(set(numeric)) if len(numeric) == len(values) else list(values.values())
    categories = list(dict.fromkeys(map(fmt_value, ordered)))
    shade = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    colors = {run: shade[fmt_value(v)] for run, v in values.items()}
    return Coloring(colors, [(f"{param} = {c}", shade[c]) for c in categories])


def grid_shape(count: int, style: str) -> tuple[int, int]:
    ncols = 1 if count == 1 else (3 if count > 4 and style != "paper" else 2)
    return math.ceil(count / ncols), ncols


def axes_grid(figure: Any, count: int, style: str, **share: Any) -> list[Any]:
    nrows, ncols = grid_shape(count, style)
    axes = figure.subplots(nrows, ncols, squeeze=False, **share).ravel().tolist()
    for extra in axes[count:]:
        extra.remove()
    return axes[:count]


def _xy(run: RunData, points: Series, options: PlotOptions, divisor: float) -> tuple[list, list]:
    if options.log:
        points = log_safe(points)
    if options.x == "time":
        points = [(e, v) for e, v in points if e in run.elapsed]
        xs = [run.elapsed[e] / divisor for e, _ in points]
    else:
        xs = [float(e) for e, _ in points]
    return xs, [v for _, v in points]


def _draw(ax: Any, xs: list, ys: list, options: PlotOptions, **style: Any) -> None:
    """One curve; with --smooth the raw values stay faint behind the smoothed ones."""
    if options.smooth > 1:
        ax.plot(xs, ys, alpha=0.25, linewidth=0.6, color=style["color"], gid=style["gid"] + "--raw")
        ys = smooth(ys, options.smooth)
    ax.plot(xs, ys, **style)


def _x_axis(runs: Sequence[RunData], options: PlotOptions) -> tuple[str, float]:
    if options.x == "epoch":
        return "epoch", 1.0
    longest = max((max(run.elapsed.values(), default=0.0) for run in runs), default=0.0)
    unit, divisor = time_unit(longest)
    return f"training time ({unit})", divisor


def _style_key(ax: Any, panel: Panel) -> None:
    """A line-style key where a panel mixes train (dashed) and test (solid) curves."""
    from matplotlib.lines import Line2D

    kinds = {is_train_metric(m) for m, _ in panel.lines}
    if len(kinds) == 2:
        handles = [
            Line2D([], [], color="0.3", linestyle="-", label="test"),
            Line2D([], [], color="0.3", linestyle="--", label="train"),
        ]
        ax.legend(handles=handles, loc="best")


def whole_epochs(axes: list[Any], options: PlotOptions) -> None:
    """Epoch ticks at whole numbers."""
    from matplotlib.ticker import MaxNLocator

    if options.x == "epoch":
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def explain_colors(figure: Any, axes: list[Any], coloring: Coloring) -> None:
    """The runs' colours: a colour bar for a numeric parameter, else a legend below."""
    import matplotlib
    from matplotlib.lines import Line2D

    if coloring.mappable is not None:
        figure.colorbar(coloring.mappable, ax=axes, label=coloring.label, shrink=0.9)
    elif coloring.entries:
        handles = [
            Line2D([], [], color=c, label=label, linestyle=coloring.linestyles.get(label, "-"))
            for label, c in coloring.entries
        ]
        # as many columns as the widest label lets fit across the figure
        size = matplotlib.font_manager.FontProperties(
            size=matplotlib.rcParams["legend.fontsize"]
        ).get_size_in_points()
        widest = max(len(label) for label, _ in coloring.entries)
        entry_points = (0.55 * widest + 4.5) * size
        ncols = max(1, min(len(handles), int(figure.get_figwidth() * 72 // entry_points)))
        figure.legend(handles=handles, loc="outside lower center", ncols=ncols)
        rows = math.ceil(len(handles) / ncols)  # room for the legend, not taken from the axes
        figure.set_figheight(figure.get_figheight() + (rows * 1.5 * size + 6) / 72)


def curves_figure(
    runs: Sequence[RunData], panels: Sequence[Panel], options: PlotOptions, color_by: str | None
) -> Any:
    """One panel per metric group, every run in each (coloured by run or by `color_by`)."""
    figure = new_figure(options.style, *grid_shape(len(panels), options.style))
    axes = axes_grid(figure, len(panels), options.style, sharex=True)
    xlabel, divisor = _x_axis(runs, options)
    params = differing_params({run.name: run.config for run in runs})
    labels = {run.name: run_label(run, params, 2) for run in runs}
    coloring = run_colors(runs, color_by, labels) if len(runs) > 1 or color_by else None
    for ax, panel in zip(axes, panels, strict=True):
        for run in runs:
            for index, (metric, label) in enumerate(panel.lines):
                xs, ys = _xy(run, run.series.get(metric, []), options, divisor)
                if not xs:
                    continue
                color = coloring.colors[run.name] if coloring else PALETTE[index % len(PALETTE)]
                _draw(
                    ax,
                    xs,
                    ys,
                    options,
                    color=color,
                    linestyle="--" if is_train_metric(metric) else "-",
                    label=label,
                    gid=gid("line", run.name, metric),
                )
        ax.set_title(panel.title)
        if options.log:
            ax.set_yscale("log")
        if coloring is None and len(panel.lines) > 1:
            ax.legend(loc="best")
        elif coloring is not None:
            _style_key(ax, panel)
    for ax in axes[-grid_shape(len(panels), options.style)[1] :]:
        ax.set_xlabel(xlabel)
    whole_epochs(axes, options)
    if coloring is not None:
        explain_colors(figure, axes, coloring)
    return figure


def _shown(run: RunData, params: dict[str, dict[str, Any]], limit: int) -> str:
    return ", ".join(f"{p}={fmt_value(v[run.name])}" for p, v in list(params.items())[:limit])


def run_label(run: RunData, params: dict[str, dict[str, Any]], limit: int = 3) -> str:
    """`name (p=v, ...)` with up to `limit` differing parameters, on one line."""
    shown = _shown(run, params, limit)
    return f"{run.name} ({shown})" if shown else run.name


def run_title(run: RunData, params: dict[str, dict[str, Any]], limit: int = 3) -> str:
    """The same on two lines, for a small panel's title."""
    shown = _shown(run, params, limit)
    return f"{run.name}\n{shown}" if shown else run.name


def grid_figure(runs: Sequence[RunData], metrics: Sequence[str], options: PlotOptions) -> Any:
    """Small multiples: one panel per run (shared axes), the chosen metrics in each."""
    nrows, ncols = grid_shape(len(runs), options.style)
    figure = new_figure(options.style, nrows, ncols, 1.2 if options.style == "paper" else 1.9)
    axes = axes_grid(figure, len(runs), options.style, sharex=True, sharey=True)
    xlabel, divisor = _x_axis(runs, options)
    params = differing_params({run.name: run.config for run in runs})
    for ax, run in zip(axes, runs, strict=True):
        for index, metric in enumerate(metrics):
            xs, ys = _xy(run, run.series.get(metric, []), options, divisor)
            if xs:
                _draw(
                    ax,
                    xs,
                    ys,
                    options,
                    color=PALETTE[index % len(PALETTE)],
                    linestyle="--" if is_train_metric(metric) else "-",
                    gid=gid("line", run.name, metric),
                )
        ax.set_title(run_title(run, params, 2), fontsize="small")
        if options.log:
            ax.set_yscale("log")
    for ax in axes[-ncols:]:
        ax.set_xlabel(xlabel)
    whole_epochs(axes, options)
    entries = [(metric, PALETTE[i % len(PALETTE)]) for i, metric in enumerate(metrics)]
    dashed: dict[str, Any] = {m: "--" for m in metrics if is_train_metric(m)}
    explain_colors(figure, axes, Coloring({}, entries, linestyles=dashed))
    return figure

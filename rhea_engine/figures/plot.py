"""`rhea plot`: read runs from the store, choose what to draw, write one figure file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rhea_engine.errors import PlotError
from rhea_engine.figures.data import (
    PlotOptions,
    RunData,
    default_panels,
    first_differing,
    metric_panels,
    parse_objective,
    read_elapsed,
    sweep_objectives,
)
from rhea_engine.figures.style import PALETTE, output_format, require_matplotlib, save, styled
from rhea_engine.runs.refresh import refresh
from rhea_engine.vocabulary import TASKS, task_metric

# the metrics the default panels draw (others are fetched only when asked for)
DEFAULT_METRICS = (
    "train_loss",
    "test_loss",
    *(task_metric(t, "test") for t in TASKS),
    "ELN_violation",
    "ELN_violation_test",
    "learning_rate",
)


@dataclass
class PlotResult:
    output: Path
    kind: str
    runs: list[str]
    axes: int


def _load(store: Any, handles: Sequence[str], options: PlotOptions) -> list[RunData]:
    refresh(store)
    rows = store.resolve_handles(list(handles), options.where)
    if not rows and options.where is not None:
        within = f" among {' '.join(handles)}" if handles else ""
        raise PlotError(f"Nothing to plot: no run{within} matches the filter {options.where!r}.")
    if not rows:
        raise PlotError(f"Nothing to plot: {' '.join(handles)} holds no runs yet.")
    if options.kind == "evaluation" and len(rows) != 1:
        raise PlotError(
            f"--kind evaluation draws one run's final evaluation; {len(rows)} runs were given "
            f"({', '.join(r.name for r in rows[:5])}{', ...' if len(rows) > 5 else ''})."
        )
    wanted: list[str] | None = None
    if options.metrics:
        wanted = [*options.metrics, *(parse_objective(o)[0] for o in options.objectives)]
    elif options.kind in ("curves", "grid", "final"):
        wanted = list(DEFAULT_METRICS)
    runs = []
    for row in rows:
        if options.kind in ("evaluation", "pareto"):
            row = store.get_run(row.name)  # with its evaluation numbers
        series = store.metrics(row.name, wanted)
        runs.append(RunData(row.name, row.config, series, dict(row.evaluation), row.path))
    if wanted is not None and not options.metrics and not any(r.series for r in runs):
        for run in runs:  # a script's own metric names: take them all
            run.series = store.metrics(run.name)
    if options.x == "time":
        for run in runs:
            run.elapsed = read_elapsed(run.path)
    return runs


def _draw(store: Any, handles: Sequence[str], runs: list[RunData], options: PlotOptions) -> Any:
    from rhea_engine.figures import curves, evaluation, sweeps

    is_sweep = any(h.startswith("sweep:") for h in handles)
    if options.kind == "evaluation":
        return evaluation.evaluation_figure(runs[0], options.style)
    if options.kind == "pareto":
        objectives = list(options.objectives)
        if not objectives:
            specs = {s["name"]: s["spec"] for s in store.sweeps()}
            for handle in handles:
                objectives += sweep_objectives(specs.get(handle.removeprefix("sweep:"), {}))
        if len(objectives) < 2:
            raise PlotError(
                "Name the objectives of the Pareto front: --objective METRIC at least twice "
                "(max:NAME for one to maximise), e.g. --objective test_loss "
                "--objective model_ndens_e_mean_err."
            )
        parsed = [parse_objective(o) for o in objectives]
        return sweeps.pareto_of_runs(runs, parsed, options)
    color_by = options.color_by
    if options.kind == "final":
        versus = options.versus or first_differing(runs, numeric=True) or first_differing(runs)
        if versus is None:
            raise PlotError(
                "The runs to plot share all their parameters: name the one for the x axis "
                "with --vs PARAM."
            )
        if color_by is None:  # a second differing parameter draws one line per value
            others = [p for p in _differing(runs) if p != versus]
            color_by = others[0] if others else None
        metrics = list(options.metrics) or [
            m for m in ("test_loss", "ELN_violation") if any(r.series.get(m) for r in runs)
        ]
        if not metrics:
            raise PlotError("The runs have no test_loss or ELN_violation yet: give --metric M.")
        return sweeps.final_figure(runs, metrics, versus, options, color_by)
    if color_by is None and is_sweep and len(runs) > 1:
        # one parameter varied: colour by it; several: one colour per run (named with its
        # values) while they fit the palette, else by the first parameter
        differing = _differing(runs)
        if len(differing) == 1 or (differing and len(runs) > len(PALETTE)):
            color_by = differing[0]
    if options.kind == "grid":
        metrics = list(options.metrics) or [
            m for m in ("train_loss", "test_loss") if any(r.series.get(m) for r in runs)
        ]
        if not metrics:
            metrics = sorted({m for r in runs for m in r.series})[:4]
        return curves.grid_figure(runs, metrics, options)
    panels = metric_panels(runs, options.metrics) if options.metrics else default_panels(runs)
    if not panels:
        raise PlotError(
            f"{', '.join(r.name for r in runs[:5])} {'has' if len(runs) == 1 else 'have'} no "
            "logged epochs yet; plot again once the first epoch is in."
        )
    return curves.curves_figure(runs, panels, options, color_by)


def _differing(runs: Sequence[RunData]) -> list[str]:
    from rhea_engine.compare import differing_params

    return list(differing_params({run.name: run.config for run in runs}))


def plot(
    store: Any, handles: Sequence[str], output: str | Path, options: PlotOptions
) -> PlotResult:
    """Draw runs (or `sweep:NAME`) from `store` into `output` (.pdf, .png or .svg)."""
    options.check()
    path = Path(output).expanduser().resolve()
    fmt = output_format(path, options.style)
    require_matplotlib()
    runs = _load(store, handles, options)
    with styled(options.style):
        figure = _draw(store, handles, runs, options)
        save(figure, path, fmt)
    return PlotResult(path, options.kind, [run.name for run in runs], len(figure.axes))

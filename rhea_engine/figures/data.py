"""What a figure shows, without matplotlib: panels, series, time axes, parameters, Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine.compare import Series, best_value, differing_params, last_value
from rhea_engine.errors import PlotError
from rhea_engine.runs.rundir import read_events
from rhea_engine.vocabulary import TASKS, task_metric

KINDS = ("curves", "grid", "final", "pareto", "evaluation")
X_AXES = ("epoch", "time")
AT = ("last", "best")


@dataclass(frozen=True)
class PlotOptions:
    """Everything `rhea plot` can be asked for (see the command's help)."""

    kind: str = "curves"
    metrics: tuple[str, ...] = ()
    log: bool = True
    x: str = "epoch"
    smooth: int = 1
    style: str = "default"
    color_by: str | None = None
    versus: str | None = None
    objectives: tuple[str, ...] = ()
    at: str = "last"
    where: str | None = None  # a filter (`rhea ls --where`): only the runs that match it

    def check(self) -> None:
        for label, value, allowed in (
            ("--kind", self.kind, KINDS),
            ("--x", self.x, X_AXES),
            ("--at", self.at, AT),
        ):
            if value not in allowed:
                raise PlotError(f"Unknown {label} '{value}'; use one of {', '.join(allowed)}.")
        if self.smooth < 1:
            raise PlotError(f"--smooth takes a window of at least 1 epoch, not {self.smooth}.")
        if self.versus is not None and self.kind != "final":
            raise PlotError(
                f"--vs chooses the x axis of --kind final; --kind {self.kind} has none to choose."
            )
        if self.objectives and self.kind != "pareto":
            raise PlotError(
                f"--objective chooses the axes of --kind pareto; --kind {self.kind} draws metrics "
                "(--metric)."
            )


@dataclass(frozen=True)
class Panel:
    """One axes: a title and the metrics drawn in it, as (metric, label) pairs."""

    title: str
    lines: tuple[tuple[str, str], ...]


@dataclass
class RunData:
    """One run as a figure needs it."""

    name: str
    config: dict[str, Any]
    series: dict[str, Series]
    evaluation: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    elapsed: dict[int, float] = field(default_factory=dict)  # epoch -> training seconds


def _present(runs: Sequence[RunData], metric: str) -> bool:
    return any(run.series.get(metric) for run in runs)


def default_panels(runs: Sequence[RunData]) -> list[Panel]:
    """Total loss, per-task test losses, ELN violation, learning rate (those present).

    With several runs each task gets its own panel (the runs are the colours); a run whose
    metrics carry none of Rhea's names gets one panel per metric instead.
    """
    panels = []
    total = [(m, m.split("_")[0]) for m in ("train_loss", "test_loss") if _present(runs, m)]
    if total:
        panels.append(Panel("total loss", tuple(total)))
    tasks = [(task_metric(t, "test"), t) for t in TASKS if _present(runs, task_metric(t, "test"))]
    if len(runs) == 1 and tasks:
        panels.append(Panel("test loss per task", tuple(tasks)))
    else:
        panels += [Panel(f"{label} test loss", ((metric, label),)) for metric, label in tasks]
    eln = [
        (m, label)
        for m, label in (("ELN_violation", "train (max)"), ("ELN_violation_test", "test"))
        if _present(runs, m)
    ]
    if eln:
        panels.append(Panel("ELN violation", tuple(eln)))
    if _present(runs, "learning_rate"):
        panels.append(Panel("learning rate", (("learning_rate", "learning rate"),)))
    if panels:
        return panels
    names = sorted({name for run in runs for name, points in run.series.items() if points})
    return [Panel(name.replace("_", " "), ((name, name),)) for name in names[:9]]


def metric_panels(runs: Sequence[RunData], metrics: Sequence[str]) -> list[Panel]:
    """One panel per asked metric; a metric no run has is a PlotError naming those they have."""
    missing = [m for m in metrics if not _present(runs, m)]
    if missing:
        known = sorted({name for run in runs for name in run.series})
        raise PlotError(
            f"No run to plot has the metric '{missing[0]}'. Metrics they have: "
            f"{', '.join(known) if known else 'none yet'}."
        )
    return [Panel(m.replace("_", " "), ((m, m),)) for m in metrics]


def is_train_metric(metric: str) -> bool:
    """Train-split curves are dashed beside the solid test curves (ELN_violation is train max)."""
    return "_train_" in metric or metric.startswith("train_") or metric == "ELN_violation"


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over `window` epochs (fewer at the start); non-finite values are skipped."""
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1) : i + 1] if math.isfinite(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def elapsed_seconds(events: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Training seconds at the end of each epoch; the gaps between a stop and a resume drop out."""
    out: dict[int, float] = {}
    reference: float | None = None
    total = 0.0
    for event in events:
        t = event.get("t")
        if not isinstance(t, (int, float)):
            continue
        if event.get("type") == "start":
            reference = float(t)
        elif event.get("type") == "epoch" and isinstance(event.get("epoch"), int):
            if reference is not None:
                total += float(t) - reference
            reference = float(t)
            out[int(event["epoch"])] = total
    return out


def read_elapsed(path: Path | None) -> dict[int, float]:
    return elapsed_seconds(read_events(path).events) if path is not None else {}


def time_unit(seconds: float) -> tuple[str, float]:
    """(unit, divisor) that keeps a time axis readable."""
    if seconds >= 3 * 3600:
        return "h", 3600.0
    if seconds >= 180:
        return "min", 60.0
    return "s", 1.0


def final_value(series: Series, at: str) -> float | None:
    """The last finite value, or the lowest (`at` = best)."""
    if at == "best":
        best = best_value(series)
        return best[1] if best else None
    return last_value(series)


def parameter_values(runs: Sequence[RunData], param: str) -> dict[str, Any]:
    """{run: value} of a config key; width/nhidden stand for all heads when they agree."""
    differing = differing_params({run.name: run.config for run in runs})
    if param in differing:
        return dict(differing[param])
    values = {run.name: run.config.get(param) for run in runs}
    if all(v is None for v in values.values()):
        known = sorted({k for run in runs for k in run.config} | set(differing))
        raise PlotError(
            f"No run to plot has the parameter '{param}'. Parameters they have: "
            f"{', '.join(known[:40]) if known else 'none'}."
        )
    return values


def first_differing(runs: Sequence[RunData], numeric: bool = False) -> str | None:
    """The first parameter whose values differ between the runs (numeric ones if asked)."""
    for param, values in differing_params({run.name: run.config for run in runs}).items():
        if not numeric or all(is_number(v) for v in values.values()):
            return param
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points (each objective minimised unless `maximize`)."""
    from rhea_engine.pareto import pareto_front as front_of

    return front_of(points, ["maximize" if up else "minimize" for up in maximize])


def parse_objective(text: str) -> tuple[str, bool]:
    """`NAME` (minimised) or `max:NAME` / `min:NAME` -> (name, maximize)."""
    direction, _, name = text.partition(":")
    if name and direction in ("max", "min"):
        return name, direction == "max"
    return text, False


def objective_values(
    runs: Sequence[RunData], objectives: Sequence[str], at: str
) -> dict[str, list[float]]:
    """{run: [value per objective]}: a metric's last/best value, else a final-evaluation number.

    Runs lacking any objective are left out.
    """
    out = {}
    for run in runs:
        values = []
        for name in objectives:
            value = final_value(run.series.get(name, []), at) if name in run.series else None
            if value is None:
                value = run.evaluation.get(name)
            if value is None or not math.isfinite(value):
                break
            values.append(float(value))
        else:
            out[run.name] = values
    return out


def sweep_objectives(spec: Mapping[str, Any]) -> list[str]:
    """The objectives a sweep's spec names (`objectives`/`objective`: names or {metric, mode})."""
    raw = spec.get("objectives", spec.get("objective"))
    if isinstance(raw, (str, dict)):
        raw = [raw]
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("metric", item.get("name")), str):
            name = str(item.get("metric", item.get("name")))
            mode = str(item.get("mode", item.get("direction", "min")))
            out.append(f"max:{name}" if mode.startswith("max") else name)
    return out

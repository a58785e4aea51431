"""Side-by-side comparison of runs: differing parameters, a metric table, plot-ready series.

Pure functions over Store rows and metric series, shared by `rhea compare` and the TUI's
compare screen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rhea_engine.config import HEADS

Series = list[tuple[int, float]]

# the curves `rhea compare` plots by default (overlaid per run, log y)
PLOT_METRICS = ("train_loss", "test_loss", "ELN_violation")
# config keys that describe where a run ran or how often it talks, not what it learned
_NOT_PARAMS = {"device", "heartbeat_seconds", "num_threads"}
_GROUPS = {"width": tuple(f"width_{h}" for h in HEADS), "nhidden": tuple(f"nhidden_{h}" for h in HEADS)}


def _collapse(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with width_* / nhidden_* folded into `width` / `nhidden` when all heads agree."""
    out = {k: v for k, v in config.items() if k not in _NOT_PARAMS}
    for label, keys in _GROUPS.items():
        values = [config.get(k) for k in keys]
        if all(k in config for k in keys) and len(set(map(repr, values))) == 1:
            for k in keys:
                out.pop(k, None)
            out[label] = values[0]
    return out


def differing_params(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{param: {run: value}} for the parameters whose values differ between the runs."""
    collapsed = {run: _collapse(cfg) for run, cfg in configs.items()}
    # fold a group only if every run folds it, so the same key is compared everywhere
    for label, keys in _GROUPS.items():
        if not all(label in cfg for cfg in collapsed.values()):
            for cfg in collapsed.values():
                if label in cfg:
                    value = cfg.pop(label)
                    cfg.update({k: value for k in keys})
    names: list[str] = []
    for cfg in collapsed.values():
        names += [k for k in cfg if k not in names]
    out: dict[str, dict[str, Any]] = {}
    for key in names:
        values = {run: cfg.get(key) for run, cfg in collapsed.items()}
        if len({repr(v) for v in values.values()}) > 1:
            out[key] = values
    return out


def _finite(series: Series) -> Series:
    return [(e, v) for e, v in series if v is not None and math.isfinite(v)]


def last_value(series: Series) -> float | None:
    finite = _finite(series)
    return finite[-1][1] if finite else None


def best_value(series: Series) -> tuple[int, float] | None:
    """(epoch, value) of the lowest finite value (every compared metric is lower-better)."""
    finite = _finite(series)
    return min(finite, key=lambda pair: (pair[1], pair[0])) if finite else None


def baseline_names(evaluations: Sequence[Mapping[str, float]]) -> list[str]:
    """Final-evaluation entries that name a baseline (Box3D, identity) or the model, in order."""
    names: list[str] = []
    for evaluation in evaluations:
        for name in evaluation:
            if name not in names:
                names.append(name)

    def rank(name: str) -> tuple[int, str]:
        lowered = name.lower()
        kind = 0 if "model" in lowered else 1 if "box3d" in lowered else 2 if "identity" in lowered else 3
        return (kind, name)

    return sorted(names, key=rank)


def metric_table(
    rows: Sequence[Any], series: Mapping[str, Mapping[str, Series]], metric: str = "test_loss"
) -> list[dict[str, Any]]:
    """One dict per run: status, epochs, last/best train & test loss, max ELN, the chosen metric,
    and the final-evaluation numbers (model, Box3D, identity) where the run has them."""
    table = []
    for row in rows:
        runs = series.get(row.name, {})
        chosen = runs.get(metric, [])
        best = best_value(chosen)
        best_test = best_value(runs.get("test_loss", []))
        eln = _finite(runs.get("ELN_violation", []))
        entry: dict[str, Any] = {
            "run": row.name,
            "sweep": row.sweep,
            "status": row.status,
            "epochs": row.last_epoch,
            "total_epochs": row.total_epochs,
            "last_train_loss": last_value(runs.get("train_loss", [])),
            "last_test_loss": last_value(runs.get("test_loss", [])),
            "best_test_loss": best_test[1] if best_test else None,
            "best_test_epoch": best_test[0] if best_test else None,
            "max_ELN_violation": max((v for _, v in eln), default=None),
            "last_ELN_violation": eln[-1][1] if eln else None,
            "metric": metric,
            "metric_last": last_value(chosen),
            "metric_best": best[1] if best else None,
            "metric_best_epoch": best[0] if best else None,
            "evaluation": dict(getattr(row, "evaluation", {}) or {}),
            "error": row.error,
        }
        table.append(entry)
    return table


def downsample(series: Series, width: int) -> Series:
    """At most ~2*width points: per bucket the first point's epoch with the min and max kept."""
    if width < 1 or len(series) <= 2 * width:
        return list(series)
    out: Series = []
    size = len(series) / width
    for bucket in range(width):
        chunk = series[int(bucket * size): int((bucket + 1) * size)]
        if not chunk:
            continue
        finite = _finite(chunk)
        if not finite:
            out.append(chunk[0])
            continue
        low = min(finite, key=lambda p: p[1])
        high = max(finite, key=lambda p: p[1])
        out.extend(sorted({low, high}, key=lambda p: p[0]))
    if series[-1] not in out:
        out.append(series[-1])
    return out


def log_safe(series: Series) -> Series:
    """Only the strictly positive finite points (for a log-scaled axis)."""
    return [(e, v) for e, v in _finite(series) if v > 0]


def compare_runs(
    store: Any, handles: Sequence[str], metric: str = "test_loss", width: int = 0
) -> dict[str, Any]:
    """Everything `rhea compare` shows, JSON-able: params, table, and the series of each run."""
    store.ingest()
    rows = [store.get_run(r.name) for r in store.resolve_handles(list(handles))]
    names = list(dict.fromkeys([metric, *PLOT_METRICS]))
    series = {row.name: store.metrics(row.name, names) for row in rows}
    if width:
        series = {run: {m: downsample(s, width) for m, s in per.items()} for run, per in series.items()}
    return {
        "runs": [row.name for row in rows],
        "metric": metric,
        "params": differing_params({row.name: row.config for row in rows}),
        "table": metric_table(rows, series, metric),
        "baselines": baseline_names([row.evaluation for row in rows]),
        "series": {run: {m: [[e, v] for e, v in s] for m, s in per.items()} for run, per in series.items()},
    }

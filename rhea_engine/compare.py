"""Side-by-side comparison of runs: differing parameters, a metric table, plot-ready series.

Pure functions over Store rows and metric series, shared by `rhea compare` and the TUI's
compare screen; `compare_home` is the whole of `rhea compare` short of drawing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rhea_engine.config import HEADS

Series = list[tuple[int, float]]

# the curves `rhea compare` plots by default (overlaid per run, log y)
PLOT_METRICS = ("train_loss", "test_loss", "ELN_violation")
# config keys that describe where a run ran or how often it talks, not what it learned
_NOT_PARAMS = {"device", "heartbeat_seconds", "num_threads"}
_GROUPS = {
    "width": tuple(f"width_{h}" for h in HEADS),
    "nhidden": tuple(f"nhidden_{h}" for h in HEADS),
}


def collapse_config(config: Mapping[str, Any]) -> dict[str, Any]:
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
    collapsed = {run: collapse_config(cfg) for run, cfg in configs.items()}
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


def swept_params(rows: Sequence[Any]) -> list[str]:
    """The config keys that vary within a sweep, over the sweeps of `rows` (in first-seen
    order; width_* and nhidden_* folded as in `differing_params`)."""
    sweeps: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        if row.sweep is not None:
            sweeps.setdefault(row.sweep, {})[row.name] = row.config
    keys: list[str] = []
    for configs in sweeps.values():
        keys += [k for k in differing_params(configs) if k not in keys]
    return keys


def _finite(series: Series) -> Series:
    return [(e, v) for e, v in series if v is not None and math.isfinite(v)]


def last_value(series: Series) -> float | None:
    finite = _finite(series)
    return finite[-1][1] if finite else None


def best_value(series: Series) -> tuple[int, float] | None:
    """(epoch, value) of the lowest finite value (every compared metric is lower-better)."""
    finite = _finite(series)
    return min(finite, key=lambda pair: (pair[1], pair[0])) if finite else None


SOURCES = (("model", "model"), ("box3d", "Box3D"), ("identity", "identity"))


def evaluation_table(evaluations: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The final evaluations side by side: one row per run (the model's numbers), then the
    Box3D and identity baselines once (or once per run where the runs' test data differ).

    Entries are named `{model,box3d,identity}_{quantity}`; others (counts) are left out.
    """
    quantities: list[str] = []
    for evaluation in evaluations.values():
        for name in evaluation:
            for prefix, _ in SOURCES:
                if name.startswith(prefix + "_"):
                    quantity = name[len(prefix) + 1 :]
                    if quantity not in quantities:
                        quantities.append(quantity)
    rows: list[dict[str, Any]] = []
    for run, evaluation in evaluations.items():
        values = {q: evaluation.get(f"model_{q}") for q in quantities}
        if any(v is not None for v in values.values()):
            rows.append({"label": run, "source": "model", "run": run, "values": values})
    for prefix, label in SOURCES[1:]:
        seen: list[dict[str, Any]] = []
        for run, evaluation in evaluations.items():
            values = {q: evaluation.get(f"{prefix}_{q}") for q in quantities}
            if all(v is None for v in values.values()) or values in seen:
                continue
            seen.append(values)
            rows.append({"label": label, "source": prefix, "run": run, "values": values})
        if len(seen) > 1:  # different test data: say whose baseline each row is
            for row in rows:
                if row["source"] == prefix:
                    row["label"] = f"{label} ({row['run']})"
    return {"quantities": quantities, "rows": rows}


def metric_table(
    rows: Sequence[Any], series: Mapping[str, Mapping[str, Series]], metric: str = "test_loss"
) -> list[dict[str, Any]]:
    """One dict per run: status, epochs, last/best train & test loss, max ELN (the stored
    summary, see vocabulary.MAX_ELN_METRICS), the chosen metric, and the run's
    final-evaluation numbers (model, Box3D, identity) where it has them."""
    table = []
    for row in rows:
        runs = series.get(row.name, {})
        chosen = runs.get(metric, [])
        best = best_value(chosen)
        best_test = best_value(runs.get("test_loss", []))
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
            # the stored summary: the same figure as `rhea ls`, `show` and the TUI
            "max_ELN_violation": getattr(row, "max_eln_violation", None),
            "max_ELN_metric": getattr(row, "max_eln_metric", None),
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
        chunk = series[int(bucket * size) : int((bucket + 1) * size)]
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


def unplottable(series: Series, log: bool) -> tuple[list[int], list[int]]:
    """Epochs a plot cannot place: (non-finite values, values <= 0 on a log axis)."""
    bad = [e for e, v in series if v is None or not math.isfinite(v)]
    low = [e for e, v in _finite(series) if v <= 0] if log else []
    return bad, low


def compare_runs(
    store: Any,
    handles: Sequence[str],
    metric: str = "test_loss",
    width: int = 0,
    where: str | None = None,
) -> dict[str, Any]:
    """Everything `rhea compare` shows, JSON-able: params, table, and the series of each run
    (of `handles`, or all runs, that match the filter `where`)."""
    from rhea_engine.importer import compared_parameters
    from rhea_engine.runs.refresh import refresh

    refresh(store)
    rows = [store.get_run(r.name) for r in store.resolve_handles(list(handles), where)]
    names = list(dict.fromkeys([metric, *PLOT_METRICS]))
    series = {row.name: store.metrics(row.name, names) for row in rows}
    if width:
        series = {
            run: {m: downsample(s, width) for m, s in per.items()} for run, per in series.items()
        }
    return {
        "runs": [row.name for row in rows],
        "metric": metric,
        "params": differing_params({row.name: compared_parameters(row) for row in rows}),
        "table": metric_table(rows, series, metric),
        "evaluation": evaluation_table({row.name: row.evaluation for row in rows}),
        "series": {
            run: {m: [[e, v] for e, v in s] for m, s in per.items()} for run, per in series.items()
        },
    }


def compare_home(
    home: Path,
    handles: Sequence[str],
    metric: str = "test_loss",
    width: int = 0,
    where: str | None = None,
) -> dict[str, Any]:
    """`compare_runs` on the store of `home`, refusing what would show nothing.

    Raises StoreError when `home` is no Rhea home, RunError when the handles hold no runs
    or no run has `metric` (unless it is the default, test_loss, and no run has any metric).
    """
    from rhea_engine.errors import RunError, StoreError
    from rhea_engine.runs.store import Store

    if not (home / "runs.db").exists() and not (home / "runs").is_dir():
        raise StoreError(
            f"{home} is not a Rhea home (no runs.db or runs/); give --home or set RHEA_HOME."
        )
    with Store(home) as store:
        result = compare_runs(store, handles, metric, width=width, where=where)
        if not result["runs"] and where is not None:
            within = f" among {' '.join(handles)}" if handles else ""
            raise RunError(f"Nothing to compare: no run{within} matches the filter {where!r}.")
        if not result["runs"]:
            raise RunError(f"Nothing to compare: {' '.join(handles)} holds no runs.")
        if all(not per.get(metric) for per in result["series"].values()):
            names = sorted({n for r in result["runs"] for n in store.metric_names(r)})
            if names or metric != "test_loss":
                raise RunError(
                    f"No run here has the metric '{metric}'. Known metrics: "
                    f"{', '.join(names) or 'none yet'}."
                )
    return result

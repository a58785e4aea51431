"""Rendering of runs for the CLI: the runs table, one run's details, per-epoch lines, JSON."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rhea_engine.runs.store import RunRow
from rhea_engine.vocabulary import TASKS
from rhea_tui.format import (
    MAX_ELN_LABEL,
    TRAIN_ELN_MARK,
    TRAIN_ELN_NOTE,
    cli_columns,
    duration,
    epochs_done,
    eta_seconds,
    gpu_lines,
    max_eln_description,
    max_eln_text,
    sci,
    sig,
    status_style,
    status_text,
    tags_text,
)

SUMMARY_FIELDS = (
    "id",
    "name",
    "sweep",
    "status",
    "created",
    "started",
    "ended",
    "heartbeat",
    "pid",
    "host",
    "slurm_job_id",
    "device",
    "git_commit",
    "git_dirty",
    "total_epochs",
    "last_epoch",
    "last_train_loss",
    "last_test_loss",
    "best_train_loss",
    "best_test_loss",
    "max_eln_violation",
    "max_eln_metric",
    "learning_rate",
    "epoch_seconds",
    "error",
    "fail_epoch",
    "fail_task",
    "tags",
)


def runs_table(
    rows: list[RunRow], width: int = 80, now: float | None = None, params: list[str] | None = None
) -> Text:
    """The runs list as aligned text (a rich Table takes ~1 ms a row; this stays fast).

    `params`: swept config keys shown as columns after lr (`rhea ls --sweep NAME`)."""
    now = time.time() if now is None else now
    columns = cli_columns(rows, params or [], now)
    header = [column.cli_label or column.label for column in columns]
    cells = [[column.text(row, now, sig) for column in columns] for row in rows]
    widths = [max(len(line[k]) for line in [header, *cells]) for k in range(len(header))]
    gap = "  " if sum(widths) + 2 * (len(widths) - 1) <= width else " "

    def line(values: list[str]) -> list[str]:
        return [
            v.rjust(w) if column.right else v.ljust(w)
            for v, w, column in zip(values, widths, columns, strict=True)
        ]

    text = Text(gap.join(line(header)).rstrip() + "\n", style="bold")
    status_at = next(k for k, column in enumerate(columns) if column.kind == "status")
    for row, values in zip(rows, cells, strict=True):
        padded = line(values)
        before = gap.join(padded[:status_at])
        text.append(before + (gap if before else ""))
        text.append(padded[status_at], style=status_style(row.status))
        text.append((gap + gap.join(padded[status_at + 1 :])).rstrip() + "\n")
    if any(TRAIN_ELN_MARK in line[k] for line in cells for k in range(len(line))):
        text.append("\n" + TRAIN_ELN_NOTE, style="dim")
    text.rstrip()
    return text


def no_runs_text(
    every: list[RunRow], sweep: str | None, status: str | None, where: str | None = None
) -> str:
    """Why `rhea ls` lists nothing: an empty home, or filters that match no run."""
    if not every:
        return "No runs yet. Start one with `rhea run`."
    asked = [f"sweep {sweep}"] if sweep else []
    asked += [f"status {status}"] if status else []
    asked += [f"--where {where}"] if where else []
    counts: dict[str, int] = {}
    for row in every:
        if sweep is None or row.sweep == sweep:
            counts[row.status] = counts.get(row.status, 0) + 1
    have = ", ".join(f"{n} {s}" for s, n in counts.items()) or "none in that sweep"
    return (
        f"No run matches ({', '.join(asked)}); this home has {len(every)} run(s) ({have}). "
        "`rhea ls` lists them all."
    )


def row_json(row: RunRow, full: bool = False) -> dict[str, Any]:
    out = {key: getattr(row, key) for key in SUMMARY_FIELDS}
    if full:
        out.update(
            config=row.config,
            data=row.data,
            traceback=row.traceback,
            evaluation=row.evaluation,
            checkpoints=row.checkpoints,
            gpu=row.gpu,
            path=str(row.path),
        )
    return out


def this_epoch_eln(get: Any) -> float | None:
    """One epoch's ELN violation: the test split's, else the training split's."""
    test = get("ELN_violation_test")
    return test if test is not None else get("ELN_violation")


def epoch_line(event: dict[str, Any], total: int | None) -> str:
    metrics = event.get("metrics") or {}

    def get(name: str) -> float | None:
        value = metrics.get(name)
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            return None

    parts = [
        f"epoch {event.get('epoch')}/{total or '?'}",
        f"train {sci(get('train_loss'))}",
        f"test {sci(get('test_loss'))}",
        # this epoch's value (the test split's when recorded), not the run's max over epochs
        f"ELN this epoch {sci(this_epoch_eln(get), 1)}",
        f"lr {sci(get('learning_rate'), 1)}",
    ]
    if get("epoch_seconds") is not None:
        parts.append(f"{get('epoch_seconds'):.1f} s")
    return "  ".join(parts)


def evaluation_table(results: dict[str, float]) -> Table:
    """Model vs Box3D vs identity side by side when names follow {model,box3d,identity}_X."""
    sources = ("model", "box3d", "identity")
    grouped: dict[str, dict[str, float]] = {}
    other: dict[str, float] = {}
    for name, value in results.items():
        head, _, rest = name.partition("_")
        if head.lower() in sources and rest:
            grouped.setdefault(rest, {})[head.lower()] = value
        else:
            other[name] = value
    table = Table(box=None, header_style="bold", pad_edge=False)
    if grouped:
        table.add_column("metric")
        for source in sources:
            table.add_column({"box3d": "Box3D"}.get(source, source), justify="right")
        for metric, values in sorted(grouped.items()):
            table.add_row(metric, *(sci(values.get(s)) for s in sources))
    other = {k: v for k, v in other.items() if not k.startswith("n_")} | {
        k: v for k, v in other.items() if k.startswith("n_")
    }
    if other:
        if not grouped:
            table.add_column("metric")
            table.add_column("value", justify="right")
            for name, value in sorted(other.items()):
                table.add_row(name, sci(value))
        else:
            for name, value in other.items():
                shown = f"{value:.0f}" if name.startswith("n_") else sci(value)
                table.add_row(name, shown, "", "")
    return table


def run_details(
    row: RunRow, series: dict[str, list[tuple[int, float]]], defaults: dict[str, Any]
) -> Group:
    """Everything `rhea show` prints about one run."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.created))
    head = Table.grid(padding=(0, 2))
    head.add_row("status", status_text(row.status, marked=False))
    head.add_row("epoch", epochs_done(row))
    head.add_row("created", when)
    if row.sweep:
        head.add_row("sweep", row.sweep)
    if row.tags:
        head.add_row("tags", tags_text(row))
    where = f"{row.host or '-'} pid {row.pid or '-'}" + (
        f", Slurm job {row.slurm_job_id}" if row.slurm_job_id else ""
    )
    head.add_row("device", f"{row.device or row.config.get('device', '-')} on {where}")
    if row.git_commit:
        head.add_row("git", row.git_commit[:12] + (" (dirty)" if row.git_dirty else ""))
    head.add_row("directory", str(row.path))
    head.add_row(MAX_ELN_LABEL, f"{max_eln_text(row, sci)}  ({max_eln_description(row)})")
    if row.epoch_seconds:
        eta = eta_seconds(row)
        left = f", {duration(eta)} to go" if eta else ""
        head.add_row("epoch time", f"{duration(row.epoch_seconds)} (last epoch){left}")
    for line in gpu_lines(row, time.time()):
        head.add_row("gpu", line)
    parts: list[Any] = [Panel(head, title=f"run {row.name}", title_align="left")]
    if row.error or row.traceback:
        text = Text(row.error or "", style="red")
        if row.fail_epoch is not None or row.fail_task:
            text.append(f"\n(epoch {row.fail_epoch}, task {row.fail_task})", style="red")
        if row.traceback:
            text.append("\n\n" + row.traceback, style="dim")
        parts.append(Panel(text, title=row.status, title_align="left", border_style="red"))
    parts.append(
        Panel(
            config_table(row, defaults),
            title="config (differences from the defaults) and data",
            title_align="left",
        )
    )
    from rhea_engine.importer import import_summary, imported_metadata

    imported = import_summary(imported_metadata(row.path), row.checkpoints or [])
    if imported:
        upstream = Table.grid(padding=(0, 2))
        for label, text in imported:
            upstream.add_row(label, text)
        parts.append(Panel(upstream, title="imported from upstream", title_align="left"))
    from rhea_engine.tracking import is_script_run

    # an import's columns and a script's metric names are their own: list every one
    every = bool(imported) or (row.path is not None and is_script_run(row.path))
    parts.append(Panel(metrics_table(series, every=every), title="metrics", title_align="left"))
    if row.checkpoints:
        checkpoints = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("epoch", "kind", "path"):
            checkpoints.add_column(column)
        for item in row.checkpoints:
            checkpoints.add_row(str(item["epoch"]), item["kind"], item["path"])
        parts.append(Panel(checkpoints, title="checkpoints", title_align="left"))
    if row.evaluation:
        parts.append(
            Panel(
                evaluation_table(row.evaluation),
                title="final evaluation: model vs Box3D vs identity",
                title_align="left",
            )
        )
    return Group(*parts)


def config_table(row: RunRow, defaults: dict[str, Any]) -> Table:
    """The config keys that differ from the defaults, then the data files with their sha256."""
    changed = {
        k: v
        for k, v in row.config.items()
        if k in defaults and v != defaults[k] and k not in ("database_list", "stable_database_list")
    }
    config = Table.grid(padding=(0, 2))
    for key, value in sorted(changed.items()):
        config.add_row(key, str(value))
    for item in row.data or [
        {"path": p, "kind": kind}
        for key, kind in (("database_list", "file"), ("stable_database_list", "stable"))
        for p in row.config.get(key, [])
    ]:
        sha = (item.get("sha256") or "")[:12]
        config.add_row(
            item.get("kind", "data"), f"{item.get('path')}" + (f"  sha256 {sha}" if sha else "")
        )
    return config


def metrics_table(series: dict[str, list[tuple[int, float]]], every: bool = False) -> Table:
    """Last and best of the main metrics; with `every`, of all (an import's or a script's own)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (
        ("metric", "left"),
        ("last", "right"),
        ("best", "right"),
        ("best epoch", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    order = ["train_loss", "test_loss", "ELN_violation", "ELN_violation_test", "learning_rate"]
    order += [f"{task}_test_loss" for task in TASKS]
    if every:
        order += sorted(name for name in series if name not in order)
    for name in order:
        points = series.get(name)
        if not points:
            continue
        finite = [p for p in points if math.isfinite(p[1])]
        best = min(finite, key=lambda p: p[1]) if finite and name != "learning_rate" else None
        table.add_row(
            name, sci(points[-1][1]), sci(best[1]) if best else "-", str(best[0]) if best else "-"
        )
    return table


def run_summary(row: RunRow) -> str:
    """A few lines at the end of a foreground run; `rhea show` has the rest."""
    lines = [
        f"Run {row.name} {row.status} after {row.last_epoch or 0} epoch(s): "
        f"best test loss {sci(row.best_test_loss)}, max ELN violation "
        f"{max_eln_text(row, sci)} ({max_eln_description(row)})."
    ]
    results = row.evaluation or {}
    pairs = [("ndens_e_mean_err", "mean |dN_e|/ntot"), ("stability_accuracy", "stability accuracy")]
    for key, label in pairs:
        values = [results.get(f"{who}_{key}") for who in ("model", "box3d", "identity")]
        if values[0] is not None:
            shown = ", ".join(
                f"{who} {sci(value)}"
                for who, value in zip(("model", "Box3D", "identity"), values, strict=True)
                if value is not None
            )
            lines.append(f"  {label}: {shown}")
    lines.append(f"Details: rhea show {row.name}")
    return "\n".join(lines)

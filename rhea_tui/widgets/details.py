"""Rich renderables for one run: the status/config panel and the log tail with its error."""

from __future__ import annotations

import re
import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rhea_engine.config import default_config
from rhea_engine.runs.store import RunRow
from rhea_tui.format import (
    MAX_ELN_LABEL,
    age,
    compact,
    duration,
    epochs_done,
    eta_seconds,
    gpu_lines,
    max_eln_description,
    max_eln_text,
    status_text,
)

METHODS = ("model", "box3d", "identity")


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) + " UTC" if t else "-"


def _section(title: str) -> Text:
    return Text(title, style="bold underline")


def evaluation_table(evaluation: dict[str, float]) -> RenderableType:
    """Model vs Box3D vs identity as a quantity x method table (plain list if unlabelled)."""
    cells: dict[str, dict[str, float]] = {}
    other: dict[str, float] = {}
    for name, value in evaluation.items():
        tokens = re.split(r"[_./:]", name)
        method = next((t for t in tokens if t.lower() in METHODS), None)
        if method is None:
            other[name] = value
            continue
        quantity = "_".join(t for t in tokens if t != method) or "value"
        cells.setdefault(quantity, {})[method.lower()] = value
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("")
    for method in METHODS:
        table.add_column("Box3D" if method == "box3d" else method, justify="right")
    for quantity, by_method in cells.items():
        table.add_row(quantity, *(compact(by_method.get(m), 3) for m in METHODS))
    for name, value in other.items():
        table.add_row(name, compact(value, 3), "", "")
    return table


def status_table(row: RunRow, now: float) -> Table:
    """Status and progress, where and when it ran, and its summary figures."""
    info = Table.grid(padding=(0, 1))
    info.add_column(style="bold")
    info.add_column()
    info.add_row("status", Text.assemble(status_text(row.status), f"  epoch {epochs_done(row)}"))
    if row.fail_epoch is not None or row.fail_task:
        info.add_row("first bad", f"epoch {row.fail_epoch} task {row.fail_task or '-'}")
    if row.sweep:
        info.add_row("sweep", row.sweep)
    device = row.device or str(row.config.get("device", "-"))
    info.add_row("host", f"{row.host or '-'}  pid {row.pid or '-'}  {device}")
    if row.slurm_job_id:
        info.add_row("slurm", str(row.slurm_job_id))
    started = row.started or row.created
    ended = f", ended {_when(row.ended)[11:]}" if row.ended else ""
    info.add_row(
        "started", f"{_when(started)} ({age(now - started) if started else '-'} ago){ended}"
    )
    if row.git_commit:
        info.add_row("git", row.git_commit[:10] + (" (dirty)" if row.git_dirty else ""))
    info.add_row("best test", compact(row.best_test_loss, 3))
    eln = max_eln_text(row, lambda v: compact(v, 3))
    info.add_row(MAX_ELN_LABEL, Text.assemble(eln, (f"  {max_eln_description(row)}", "dim")))
    learning_rate = compact(row.config.get("learning_rate"), 3)
    info.add_row("lr", f"{learning_rate} set, {compact(row.learning_rate, 3)} now")
    if row.epoch_seconds:
        eta = eta_seconds(row, now)
        left = f", {duration(eta)} to go" if eta else ""
        info.add_row("epoch time", duration(row.epoch_seconds) + left)
    for line in gpu_lines(row, now):
        info.add_row("gpu", line)
    return info


def details_panel(row: RunRow, now: float, all_config: bool = False) -> RenderableType:
    """Status, where it runs, data, checkpoints, final evaluation and the config."""
    info = status_table(row, now)
    parts: list[RenderableType] = [info]
    if row.data:
        data = Table.grid(padding=(0, 1))
        for item in row.data:
            sha = str(item.get("sha256") or "")[:8]
            data.add_row(str(item.get("kind", "")), str(item.get("path", "")), Text(sha, "dim"))
        parts += [Text(""), _section("data"), data]
    parts += [Text(""), _section("checkpoints")]
    if row.checkpoints:
        ckpts = Table.grid(padding=(0, 1))
        for ckpt in row.checkpoints[-8:]:
            ckpts.add_row(
                f"epoch {ckpt.get('epoch')}",
                str(ckpt.get("kind", "")),
                Text(str(ckpt.get("path", "")), "dim"),
            )
        parts.append(ckpts)
    else:
        parts.append(Text("none yet", style="dim"))
    parts += [Text(""), _section("final evaluation")]
    parts.append(evaluation_table(row.evaluation) if row.evaluation else Text("not yet", "dim"))
    parts += [Text(""), _section("config" if all_config else "config (changed from defaults)")]
    parts.append(config_table(row.config, all_config))
    if not all_config:
        parts.append(Text("the other keys are at their defaults (a shows all)", style="dim"))
    return Group(*parts)


def config_table(config: dict[str, Any], all_keys: bool = False) -> Table:
    """The keys that differ from the defaults (bold), then, with `all_keys`, the rest (dim)."""
    defaults = default_config().to_dict()
    changed = [k for k in config if defaults.get(k, object()) != config[k]]
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    rest = [k for k in config if k not in changed] if all_keys else []
    for key in changed + rest:
        value = config[key]
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        table.add_row(key, Text(text, style="" if key in changed else "dim"))
    return table


def log_text(row: RunRow | None, tail: str, lines: int = 200) -> Text:
    """The last lines of stdout.log, then the run's error and traceback in red."""
    out = Text()
    body = "\n".join(tail.rstrip("\n").splitlines()[-lines:])
    out.append(body or "(stdout.log is empty)", style="" if body else "dim")
    if row is not None and (row.error or row.traceback):
        out.append("\n\n")
        if row.error:
            out.append(f"{row.status}: {row.error}\n", style="bold red")
        if row.traceback:
            out.append(row.traceback.rstrip("\n"), style="red")
    return out

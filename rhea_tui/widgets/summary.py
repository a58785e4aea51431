"""Text above the runs table: counts per status, the view, GPUs in use, and first steps."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.markup import escape

from rhea_engine.runs.defaults import DATA_DIR, DEFAULT_N
from rhea_engine.runs.store import RunRow
from rhea_engine.vocabulary import ACTIVE_STATUSES, STATUSES
from rhea_tui.format import TRAIN_ELN_NOTE, gigabytes, gpu_devices, status_mark, status_style
from rhea_tui.runs_view import RunsView


def counts_text(
    runs: list[RunRow], loaded: bool, shown: int, view: RunsView, where: str | None = None
) -> str:
    """'6 runs ▶ 1 ✔ 3 …  │ sort created ↑ · filter lr · 3 shown · 2 marked' (markup);
    `where`: the filter expression the poll matches (see RunsView.applied_filter)."""
    if not loaded:
        return "reading runs…"
    counts: dict[str, int] = {}
    for row in runs:
        counts[row.status] = counts.get(row.status, 0) + 1
    parts = [f"[b]{len(runs)} runs[/b]"]
    parts += [
        Text(f"{status_mark(s)} {counts[s]}", style=status_style(s)).markup
        for s in STATUSES
        if counts.get(s)
    ]
    facts = [f"sort {view.sort_label} {'↓' if view.descending else '↑'}"]
    applied = view.applied_filter(where)
    if applied or view.status_filter:
        typed = escape(f"{applied} {view.status_filter or ''}".strip())
        facts += [f"filter {typed}", f"{shown} shown"]
    if view.group:
        facts.append("grouped by sweep")
    if view.marked:
        facts.append(f"{len(view.marked)} marked")
    if any(row.max_eln_metric == "ELN_violation" for row in runs):
        facts.append(escape(TRAIN_ELN_NOTE.split(":")[0]))
    return "  ".join(parts) + "  [dim]│ " + " · ".join(facts) + "[/dim]"


def devices_text(runs: list[RunRow]) -> Text | None:
    """One line per GPU that active runs report: utilisation, memory, and its runs."""
    gpus: dict[tuple[str, str], tuple[dict[str, object], list[str]]] = {}
    for row in runs:
        if row.status not in ACTIVE_STATUSES:
            continue
        for device in gpu_devices(row):
            key = (row.host or "?", str(device.get("index")))
            gpus.setdefault(key, (device, []))[1].append(row.name)
    if not gpus:
        return None
    out = Text()
    for (host, index), (device, names) in sorted(gpus.items()):
        if out:
            out.append("\n")
        used, total = device.get("memory_used"), device.get("memory_total")
        out.append(f"GPU {host}:{index} ", style="bold")
        out.append(f"{device.get('name', '')}  {device.get('utilization') or 0:.0f}% busy  ")
        out.append(f"{gigabytes(used)}/{gigabytes(total)}  ")  # type: ignore[arg-type]
        out.append(" ".join(names), style="dim")
    return out


def getting_started(home: Path) -> str:
    """The panel of a home without runs: how to start one, and which data it would use."""
    data = home / DATA_DIR
    return (
        f"[b]No runs in {escape(str(home))} yet.[/b]\n\n"
        "Press [b]n[/b] to start a training run: the form takes the learning rate, epochs, "
        "network size, batch size and data files, and can start a sweep.\n"
        f"Without data files, Rhea trains on a synthetic data set that it generates once "
        f"into {escape(str(data))}/ ({DEFAULT_N:,} cells; a few seconds) and reuses.\n\n"
        "From a shell:  [b]rhea run --epochs 20[/b]    [b]rhea sweep --lr 1e-3,3e-4[/b]    "
        "[b]rhea import DIR[/b] (upstream run folders)\n"
        "Runs started elsewhere in this home appear here as they start.   "
        "[b]?[/b] lists every key, [b]q[/b] quits."
    )

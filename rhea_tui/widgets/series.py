"""Pure text helpers for the TUI: compact numbers, ages and status marks."""

from __future__ import annotations

import math


def fmt_num(value: float | None, digits: int = 2) -> str:
    """Compact number text: '1.2e-4', '0.35', '12.3', '-' for missing, 'nan'/'inf' as is."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-2 <= magnitude < 1e3:
        text = f"{value:.{digits + 1}g}"
        return text
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_age(seconds: float | None) -> str:
    """Short age text: '45s', '12m', '3h', '5d'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


# A mark per status that reads without colour (16-colour terminals, screen readers).
STATUS_MARKS = {
    "queued": ("…", "queued"),
    "running": ("▶", "running"),
    "completed": ("✔", "done"),
    "failed": ("✖", "FAILED"),
    "diverged": ("↯", "DIVERGED"),
    "stopped": ("■", "stopped"),
    "lost": ("?", "LOST"),
    "pruned": ("✂", "pruned"),
}
STATUS_STYLES = {
    "queued": "dim",
    "running": "bold green",
    "completed": "cyan",
    "failed": "bold red",
    "diverged": "bold magenta",
    "stopped": "yellow",
    "lost": "bold yellow",
    "pruned": "dim",
}


def status_text(status: str) -> tuple[str, str]:
    """(label with its mark, rich style) of a run status."""
    mark, label = STATUS_MARKS.get(status, ("·", status))
    return f"{mark} {label}", STATUS_STYLES.get(status, "")

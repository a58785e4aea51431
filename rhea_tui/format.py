"""How run values look in both front ends: status marks and colours, numbers, ages, run columns.

The run vocabulary itself (tasks, statuses) lives in `rhea_engine.vocabulary`; this module
only says how it is shown. The CLI (`rhea ls`, `show`, `compare`) and the TUI import every
colour, number format and runs-listing column from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.text import Text

if TYPE_CHECKING:
    from rhea_engine.runs.store import RunRow

# --- statuses ---------------------------------------------------------------------------
# A mark and a label per status that read without colour (16-colour terminals, screen readers).
STATUS_MARKS = {
    "queued": ("…", "queued"),
    "running": ("▶", "running"),
    "completed": ("✔", "done"),
    "failed": ("✖", "FAILED"),
    "diverged": ("↯", "DIVERGED"),
    "stopped": ("■", "stopped"),
    "lost": ("?", "LOST"),
    "pruned": ("✂", "pruned"),
    "missing": ("∅", "MISSING"),
}
# One colour per status, in the CLI and the TUI alike.
STATUS_STYLES = {
    "queued": "dim",
    "running": "bold green",
    "completed": "cyan",
    "failed": "bold red",
    "diverged": "bold magenta",
    "stopped": "yellow",
    "lost": "bold yellow",
    "pruned": "dim",
    "missing": "bold red",
}


def status_style(status: str) -> str:
    """The rich style of a run status ('' for an unknown one)."""
    return STATUS_STYLES.get(status, "")


def status_mark(status: str) -> str:
    """The one-character mark of a run status."""
    return STATUS_MARKS.get(status, ("·", status))[0]


def status_label(status: str) -> str:
    """The mark and the short label of a run status: '▶ running', '✔ done'."""
    mark, label = STATUS_MARKS.get(status, ("·", status))
    return f"{mark} {label}"


def status_text(status: str, marked: bool = True) -> Text:
    """A run status in its colour: with its mark (TUI), or the bare status word (CLI)."""
    return Text(status_label(status) if marked else status, style=status_style(status))


# --- numbers and ages ---------------------------------------------------------------------
def compact(value: float | None, digits: int = 2) -> str:
    """Compact number for narrow cells and plot ticks: '1.2e-4', '0.35', '12.3', '-', 'nan'."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e3:
        return f"{value:.{digits + 1}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def sig(value: float | None, digits: int = 3) -> str:
    """`digits` significant digits for CLI tables: '0.0632', '7.05e-05', '-' for missing."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def sci(value: float | None, digits: int = 3) -> str:
    """Scientific notation for per-epoch lines and details: '6.320e-02', '-', 'nan'."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}e}"


def epoch_ticks(first: int, last: int, count: int = 5) -> list[int]:
    """Whole-epoch tick positions from first to last (plot x axes)."""
    if last <= first:
        return [first]
    return sorted({round(first + i * (last - first) / (count - 1)) for i in range(count)})


def value_ticks(low: float, high: float, count: int, log: bool) -> list[float]:
    """Evenly spaced ticks (geometrically on a log axis) from low to high; label them with
    `compact`, never plotext's fixed-point labels (0.000000238)."""
    if high <= low:
        return [low]
    if log:
        ratio = (high / low) ** (1 / (count - 1))
        return [low * ratio**i for i in range(count)]
    step = (high - low) / (count - 1)
    return [low + step * i for i in range(count)]


def cell(value: Any, number: Callable[[float], str] = sig) -> str:
    """Any config or metric value in a table cell: numbers by `number`, file names for paths."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (list, tuple)):
        return ",".join(Path(str(v)).name for v in value)
    return str(value)


def age(seconds: float | None) -> str:
    """Short age, rounded down: '45s', '12m', '3h', '5d'; '-' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def epochs_done(row: RunRow) -> str:
    """'12/40': epochs written of the planned total ('?' when unknown)."""
    total = row.total_epochs or row.config.get("epochs")
    return f"{row.last_epoch or 0}/{total or '?'}"


# --- the runs listing (`rhea ls` and the TUI runs table) -----------------------------------
Kind = Literal["name", "text", "status", "number", "age"]
Shown = Literal["always", "wide", "present", "never"]


@dataclass(frozen=True)
class RunColumn:
    """One column of the runs listing; `value(row, now)` is the raw value, `kind` its look.

    `tui`: shown always, only on wide terminals, or never. `cli`: shown always, only when
    some row has a value (`present`), or never. `cli_label` overrides the header in `rhea ls`.
    """

    key: str
    label: str
    value: Callable[[RunRow, float], Any]
    kind: Kind = "text"
    tui: Shown = "always"
    cli: Shown = "always"
    cli_label: str | None = None

    @property
    def right(self) -> bool:
        return self.kind in ("number", "age") or self.key == "epoch"

    def text(self, row: RunRow, now: float, number: Callable[[float | None], str]) -> str:
        """The cell as plain text (statuses as their bare word; the caller adds colour)."""
        value = self.value(row, now)
        if self.kind == "number":
            return number(value)
        if self.kind == "age":
            return age(value)
        return "-" if value in (None, "") else str(value)


def tags_text(row: RunRow) -> str | None:
    """A run's tags in a cell: 'baseline,paper' (None when it has none)."""
    return ",".join(row.tags) or None


def _started_ago(row: RunRow, now: float) -> float | None:
    started = row.started or row.created
    return now - started if started else None


RUN_COLUMNS: tuple[RunColumn, ...] = (
    RunColumn("run", "run", lambda r, now: r.name, kind="name"),
    RunColumn("sweep", "sweep", lambda r, now: r.sweep, tui="wide", cli="present"),
    RunColumn("status", "status", lambda r, now: r.status, kind="status"),
    RunColumn("epoch", "epoch", lambda r, now: epochs_done(r)),
    RunColumn("train", "train", lambda r, now: r.last_train_loss, kind="number"),
    RunColumn("test", "test", lambda r, now: r.last_test_loss, kind="number"),
    RunColumn("best", "best", lambda r, now: r.best_test_loss, kind="number", tui="never"),
    RunColumn(
        "eln", "ELN max", lambda r, now: r.max_eln_violation, kind="number", cli_label="max ELN"
    ),
    RunColumn(
        "lr",
        "lr",
        lambda r, now: r.learning_rate or r.config.get("learning_rate"),
        kind="number",
    ),
    RunColumn("device", "device", lambda r, now: r.device or r.config.get("device"), tui="wide"),
    RunColumn("age", "age", _started_ago, kind="age"),
    RunColumn("tags", "tags", lambda r, now: tags_text(r), tui="wide", cli="present"),
)


def tui_columns(wide: bool) -> list[RunColumn]:
    """The columns of the TUI runs table at this terminal width."""
    return [c for c in RUN_COLUMNS if c.tui == "always" or (wide and c.tui == "wide")]


def cli_columns(rows: Sequence[RunRow]) -> list[RunColumn]:
    """The columns of `rhea ls` for these rows (a `present` column only if a row has a value)."""
    shown = []
    for column in RUN_COLUMNS:
        if column.cli == "never":
            continue
        if column.cli == "present" and not any(column.value(r, 0.0) for r in rows):
            continue
        shown.append(column)
    return shown

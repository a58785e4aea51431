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

from rhea_engine.vocabulary import ACTIVE_STATUSES

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
    """Whole-epoch tick positions for plot x axes: evenly spaced at multiples of 1, 2 or 5 x
    10^k, at most `count` (first and last when the range holds fewer than two)."""
    if last <= first:
        return [first]
    raw = (last - first) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)))
    ticks = list(range(math.ceil(first / step) * step, last + 1, step))
    return ticks if len(ticks) >= 2 else [first, last]


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


def duration(seconds: float | None) -> str:
    """Short duration: '1.5s', '45s', '12m05s', '3h12m', '2d03h'; '-' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def gigabytes(size: float | None) -> str:
    """Bytes as GB with one decimal: '12.3G' ('-' when unknown)."""
    return "-" if size is None else f"{size / 1e9:.1f}G"


def epochs_done(row: RunRow) -> str:
    """'12/40': epochs written of the planned total ('?' when unknown)."""
    return f"{row.last_epoch or 0}/{total_epochs(row) or '?'}"


def total_epochs(row: RunRow) -> int | None:
    return row.total_epochs or row.config.get("epochs")


# --- the figures behind a few words ---------------------------------------------------------
# "max ELN" is defined once, in rhea_engine.vocabulary.MAX_ELN_METRICS; a run that recorded
# only the training split's violation gets this mark beside the figure.
MAX_ELN_LABEL = "max ELN"  # the one name of the figure, in every front end
TRAIN_ELN_MARK = "*"
TRAIN_ELN_NOTE = "* train ELN: the run recorded no test ELN violation"


def max_eln_text(row: RunRow, number: Callable[[float | None], str]) -> str:
    """The run's max ELN (over all epochs), marked when it is the training split's."""
    text = number(row.max_eln_violation)
    return text + TRAIN_ELN_MARK if row.max_eln_metric == "ELN_violation" else text


def max_eln_description(row: RunRow) -> str:
    """Which ELN violation `max_eln_text` is, in words (`rhea show`, the run screen)."""
    if row.max_eln_metric == "ELN_violation":
        return "train split (no test ELN), max over epochs"
    return "test split, max over epochs"


# a sweep's Pareto front (rhea_engine.pareto): `rhea compare --pareto` and the TUI's compare
FRONT_MARK = "★"
FRONT_NOTE = f"{FRONT_MARK}: no other trial is better on every objective"


def objective_label(name: str, direction: str) -> str:
    """A sweep objective's column header, with which way is better."""
    return f"{name} ({'max' if direction == 'maximize' else 'min'})"


def left_out_text(left_out: list[dict[str, Any]]) -> str:
    """The trials a Pareto front leaves out, and why, in one line ("" when none)."""
    if not left_out:
        return ""
    trials = ", ".join(
        f"{t['run']} ({t['status']}" + (f", no {'/'.join(t['missing'])})" if t["missing"] else ")")
        for t in left_out
    )
    return f"Left out (not completed, or without every objective): {trials}"


def parity_text(parity: dict[str, float]) -> str:
    """An export's parity check in words: the largest difference per predicted quantity."""
    return (
        f"largest difference from the trained model on {int(parity['cells'])} random physical "
        f"cells: F4_final {parity['max_F4_final_over_ntot']:.2e} of ntot, growth rate "
        f"{parity['max_rel_growthrate']:.2e} relative, stability "
        f"{parity['max_abs_stability']:.2e}"
    )


def news_text(row: RunRow) -> str:
    """What the TUI says when a run ends: how far it got and why it stopped."""
    at = row.fail_epoch if row.fail_epoch is not None else row.last_epoch or 0
    error = (row.error or "").strip().splitlines()
    reason = f": {error[0]}" if error else ""
    best = f"best test loss {compact(row.best_test_loss, 3)}"
    if row.status == "completed":
        return f"{row.name} finished {epochs_done(row)} epochs; {best}, max ELN " + max_eln_text(
            row, compact
        )
    if row.status == "diverged":
        task = f" (task {row.fail_task})" if row.fail_task else ""
        return f"{row.name} DIVERGED at epoch {at}{task}{reason}"
    if row.status == "pruned":
        return f"{row.name} was pruned by its sweep at epoch {at}; {best}"
    return f"{row.name} {status_label(row.status).split()[-1]} at epoch {at}{reason}"


def eta_seconds(row: RunRow, now: float = 0.0) -> float | None:
    """Time left for an active run: epochs to go times the last epoch's wall time."""
    if row.status not in ACTIVE_STATUSES or not row.epoch_seconds:
        return None
    left = (total_epochs(row) or 0) - (row.last_epoch or 0)
    return left * row.epoch_seconds if left > 0 else None


def gpu_devices(row: RunRow) -> list[dict[str, Any]]:
    """The GPU figures the worker recorded last (empty when there are none)."""
    return list((row.gpu or {}).get("devices") or [])


def gpu_text(row: RunRow, now: float = 0.0) -> str | None:
    """'87% 12.3G' for an active run on a GPU: utilisation and the memory the run holds."""
    devices = gpu_devices(row)
    if row.status not in ACTIVE_STATUSES or not devices:
        return None
    device = devices[0]
    memory = device.get("process_memory") or device.get("memory_used")
    return f"{device.get('utilization') or 0:.0f}% {gigabytes(memory)}"


def gpu_lines(row: RunRow, now: float) -> list[str]:
    """The GPU figures the run's worker recorded last, with how old they are."""
    sampled = (row.gpu or {}).get("t")
    when = f" ({age(now - sampled)} ago)" if isinstance(sampled, (int, float)) else ""
    lines = []
    for device in gpu_devices(row):
        mine = device.get("process_memory")
        held = f", this run {gigabytes(mine)}" if mine else ""
        lines.append(
            f"{device.get('name', 'GPU')} #{device.get('index')}: "
            f"{device.get('utilization') or 0:.0f}% busy, {gigabytes(device.get('memory_used'))}"
            f" of {gigabytes(device.get('memory_total'))}{held}{when}"
        )
    return lines


# --- the runs listing (`rhea ls` and the TUI runs table) -----------------------------------
Kind = Literal["name", "text", "status", "number", "age", "duration"]
NARROW, WIDE, WIDER = 0, 100, 140  # terminal widths (columns) from which a TUI column shows


@dataclass(frozen=True)
class RunColumn:
    """One column of the runs listing; `value(row, now)` is the raw value, `kind` its look.

    `tui_from`: the narrowest terminal that shows it in the TUI (None: never). `cli`: shown
    by `rhea ls`. `sparse`: hidden in both when no listed run has a value. `cli_label`
    overrides the header in `rhea ls`; `text` overrides how the value is written.
    """

    key: str
    label: str
    value: Callable[[RunRow, float], Any]
    kind: Kind = "text"
    tui_from: int | None = NARROW
    cli: bool = True
    sparse: bool = False
    cli_label: str | None = None
    write: Callable[[RunRow, Callable[[float | None], str]], str] | None = None

    @property
    def right(self) -> bool:
        return self.kind in ("number", "age", "duration") or self.key == "epoch"

    def text(self, row: RunRow, now: float, number: Callable[[float | None], str]) -> str:
        """The cell as plain text (statuses as their bare word; the caller adds colour)."""
        if self.write is not None:
            return self.write(row, number)
        value = self.value(row, now)
        if self.kind == "number":
            return number(value) if isinstance(value, float) or value is None else cell(value)
        if self.kind == "age":
            return age(value)
        if self.kind == "duration":
            return duration(value)
        return "-" if value in (None, "") else str(value)


def tags_text(row: RunRow) -> str | None:
    """A run's tags in a cell: 'baseline,paper' (None when it has none)."""
    return ",".join(row.tags) or None


def _started_ago(row: RunRow, now: float) -> float | None:
    started = row.started or row.created
    return now - started if started else None


RUN_COLUMNS: tuple[RunColumn, ...] = (
    RunColumn("run", "run", lambda r, now: r.name, kind="name"),
    RunColumn("sweep", "sweep", lambda r, now: r.sweep, tui_from=WIDE, sparse=True),
    RunColumn("status", "status", lambda r, now: r.status, kind="status"),
    RunColumn("epoch", "epoch", lambda r, now: epochs_done(r)),
    RunColumn("train", "train", lambda r, now: r.last_train_loss, kind="number", tui_from=WIDE),
    RunColumn("test", "test", lambda r, now: r.last_test_loss, kind="number"),
    RunColumn("best", "best", lambda r, now: r.best_test_loss, kind="number"),
    RunColumn(
        "eln",
        MAX_ELN_LABEL,
        lambda r, now: r.max_eln_violation,
        kind="number",
        write=max_eln_text,
    ),
    # the configured rate; the scheduler's current one is "lr now"
    RunColumn("lr", "lr", lambda r, now: r.config.get("learning_rate"), kind="number"),
    RunColumn(
        "lr_now", "lr now", lambda r, now: r.learning_rate, kind="number", tui_from=WIDER, cli=False
    ),
    RunColumn("epoch_s", "s/ep", lambda r, now: r.epoch_seconds, kind="duration", tui_from=WIDE),
    RunColumn("eta", "ETA", eta_seconds, kind="duration", sparse=True),
    RunColumn("gpu", "gpu", gpu_text, sparse=True),
    RunColumn(
        "device", "device", lambda r, now: r.device or r.config.get("device"), tui_from=WIDER
    ),
    RunColumn("age", "age", _started_ago, kind="age"),
    RunColumn("tags", "tags", lambda r, now: tags_text(r), tui_from=WIDER, sparse=True),
)
PARAM_PREFIX = "param:"


def _has_value(column: RunColumn, rows: Sequence[RunRow], now: float) -> bool:
    return any(column.value(row, now) not in (None, "") for row in rows)


def param_label(key: str) -> str:
    """A swept config key's column header: its CLI shortcut where it has one."""
    from rhea_engine.config import SHORTCUTS

    short = next((name for name, keys in SHORTCUTS.items() if keys == (key,)), None)
    return short or key


def param_columns(keys: Sequence[str]) -> list[RunColumn]:
    """Columns of swept config keys (`width`, `nhidden`: every head alike), as compact cells."""
    from rhea_engine.compare import collapse_config

    def column(key: str) -> RunColumn:
        def value(row: RunRow, now: float) -> Any:
            return collapse_config(row.config).get(key, row.config.get(key))

        return RunColumn(PARAM_PREFIX + key, param_label(key), value, kind="number")

    # the lr column shows the configured learning rate already
    return [column(key) for key in keys if key != "learning_rate"]


def tui_columns(
    width: int, rows: Sequence[RunRow] = (), params: Sequence[str] = (), now: float = 0.0
) -> list[RunColumn]:
    """The columns of the TUI runs table at this terminal width, swept parameters after lr."""
    shown = []
    for column in RUN_COLUMNS:
        if column.tui_from is None or width < column.tui_from:
            continue
        if column.sparse and not _has_value(column, rows, now):
            continue
        shown.append(column)
        if column.key == "lr":
            shown += param_columns(params)
    return shown


def cli_columns(
    rows: Sequence[RunRow], params: Sequence[str] = (), now: float = 0.0
) -> list[RunColumn]:
    """The columns of `rhea ls` for these rows (a sparse column only if a row has a value)."""
    shown = []
    for column in RUN_COLUMNS:
        if not column.cli or (column.sparse and not _has_value(column, rows, now)):
            continue
        shown.append(column)
        if column.key == "lr":
            shown += param_columns(params)
    return shown

"""RunsView: which runs the runs screen shows, in which order, with which columns (no Textual)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rhea_engine.runs.store import RunRow
from rhea_tui.filtering import TypedFilter, passes, read_filter
from rhea_tui.format import MAX_ELN_LABEL, RUN_COLUMNS, RunColumn, tui_columns

# (column key, label): the sort keys `o` cycles through; values come from the columns
SORTS = (
    ("id", "created"),
    ("test", "test loss"),
    ("best", "best test loss"),
    ("train", "train loss"),
    ("eln", MAX_ELN_LABEL),
    ("lr", "lr"),
    ("epoch", "epoch"),
    ("eta", "ETA"),
    ("age", "age"),
)
_SPECIAL: dict[str, Callable[[RunRow, float], Any]] = {
    "id": lambda r, now: r.id,
    "epoch": lambda r, now: r.last_epoch,
}
STATUS_FILTERS = (None, "running", "failed", "diverged", "completed", "stopped", "lost", "queued")
MAX_PARAM_COLUMNS = 6


def sort_value(key: str, row: RunRow, now: float) -> float:
    """A run's value for sort key `key` (missing and non-numeric values: +inf)."""
    column = next((c for c in RUN_COLUMNS if c.key == key), None)
    value = (
        _SPECIAL[key](row, now) if key in _SPECIAL else column.value(row, now) if column else None
    )
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return float(value)


@dataclass
class RunsView:
    """The runs screen's filter, sort and grouping, applied to the listed runs."""

    filter_text: str = ""
    typed: TypedFilter = field(default_factory=TypedFilter)  # filter_text, read (filtering)
    status_filter: str | None = None
    sort_index: int = 0
    descending: bool = False
    group: bool = False
    marked: set[str] = field(default_factory=set)

    @property
    def sort_label(self) -> str:
        return SORTS[self.sort_index][1]

    @property
    def sweep_filter(self) -> str | None:
        return self.typed.sweep

    def set_filter(self, text: str, config_keys: Iterable[str] = ()) -> TypedFilter:
        """Read the filter box's text: words, or an expression (see rhea_tui.filtering)."""
        self.filter_text = text.strip()
        self.typed = read_filter(self.filter_text, config_keys)
        return self.typed

    def applied_filter(self, where: str | None) -> str:
        """The filter in force: while the box holds a mistake, the latest expression that
        worked (`where`, what the poll matches)."""
        return self.filter_text if self.typed.error is None else where or ""

    def rows(
        self, runs: Sequence[RunRow], now: float, matches: set[int] | None = None
    ) -> list[RunRow]:
        """The runs that pass the filter, sorted (missing values last), grouped by sweep;
        `matches`: the ids the poll found for the filter expression (None: all pass)."""
        status = self.typed.status or self.status_filter
        rows = [
            row
            for row in runs
            if passes(row, self.typed, matches) and (status is None or row.status == status)
        ]
        key = SORTS[self.sort_index][0]
        rows.sort(key=lambda r: (sort_value(key, r, now), r.id), reverse=self.descending)
        if self.descending:  # missing values stay last either way
            rows.sort(key=lambda r: sort_value(key, r, now) == math.inf)
        if self.group:
            order: dict[str | None, int] = {}
            for row in rows:
                order.setdefault(row.sweep, len(order))
            rows.sort(key=lambda r: order[r.sweep])
        return rows

    def params(self, rows: Sequence[RunRow]) -> list[str]:
        """Swept parameters to show as columns: when grouped by sweep or filtered to one."""
        if not (self.group or self.sweep_filter):
            return []
        from rhea_engine.compare import swept_params

        return swept_params(rows)[:MAX_PARAM_COLUMNS]

    def columns(self, width: int, rows: Sequence[RunRow], now: float) -> list[RunColumn]:
        columns = tui_columns(width, rows, self.params(rows), now)
        # grouped, each sweep has a header row: a sweep column would only repeat it
        return [c for c in columns if not (self.group and c.key == "sweep")]

    def clear(self) -> str | None:
        """Drop the filter and the marks; what was cleared, in words (None: nothing was)."""
        cleared = []
        if self.filter_text or self.status_filter:
            cleared.append("the filter")
        if self.marked:
            count = len(self.marked)
            cleared.append(f"{count} mark{'s' if count > 1 else ''}")
        self.set_filter("")
        self.status_filter = None
        self.marked.clear()
        return " and ".join(cleared) or None

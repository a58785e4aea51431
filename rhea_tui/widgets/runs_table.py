"""RunsTable: the live table of runs, updated cell by cell so the cursor never jumps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from rhea_engine.runs.store import RunRow
from rhea_tui.format import RunColumn, compact, status_mark, status_text

GROUP_PREFIX = "sweep:"
MAX_WIDTH = 28  # longer run or sweep names are cut in the table (the run screen has them whole)


def run_cell(column: RunColumn, row: RunRow, marked: bool, now: float) -> Text:
    """One cell of a run's row, as the TUI shows it."""
    if column.kind == "name":
        return Text(("● " if marked else "  ") + row.name, style="bold" if marked else "")
    if column.kind == "status":
        return status_text(row.status)
    text = column.text(row, now, compact)
    if column.right:
        return Text(text, justify="right")
    return Text(text, style="dim" if column.value(row, now) in (None, "") else "")


def row_cells(row: RunRow, marked: bool, now: float, columns: Sequence[RunColumn]) -> list[Text]:
    """The cells of one run, in column order."""
    return [run_cell(column, row, marked, now) for column in columns]


def group_cells(sweep: str | None, rows: list[RunRow], columns: Sequence[RunColumn]) -> list[Text]:
    """A header row of one sweep group: its name and a count per status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    summary = " ".join(f"{status_mark(s)}{n}" for s, n in sorted(counts.items()))
    name = f"▾ {sweep or '(no sweep)'} ({len(rows)})"
    cells = [Text(name, style="bold reverse"), Text(summary, style="bold")]
    return cells + [Text("") for _ in columns[2:]]


def neighbour(old: list[str], new: list[str], key: str | None) -> int:
    """Where the cursor goes when the layout changes: the same key, else the nearest key
    after it (then before it) that is still shown, else the top."""
    if key in new:
        return new.index(key)
    if key in old:
        at = old.index(key)
        for candidate in [*old[at + 1 :], *reversed(old[:at])]:
            if candidate in new:
                return new.index(candidate)
    return 0


class RunsTable(DataTable[Text]):
    """One row per run (key: the run handle); group header rows have key 'sweep:NAME'."""

    BINDINGS = [
        Binding("home,g", "scroll_top", "First", show=False),
        Binding("end,G", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=1)
        self.columns_shown: list[RunColumn] = []
        self._layout: list[str] = []
        self._cells: dict[str, list[Text]] = {}
        # widths each column has grown to, per view (flat or grouped: group headers are long)
        self._widths: dict[tuple[bool, str], int] = {}
        self._grouped = False

    def _rebuild_columns(self, columns: Sequence[RunColumn]) -> None:
        """Columns get fixed widths (grown to fit the data), so every row renders whole."""
        self.clear(columns=True)
        self.columns_shown = list(columns)
        for column in columns:
            grown = self._widths.get((self._grouped, column.key), 0)
            width = min(MAX_WIDTH, max(len(column.label), grown))
            self.add_column(column.label, key=column.key, width=width)
        self._layout = []
        self._cells = {}

    def show(
        self,
        rows: list[RunRow],
        marked: set[str],
        now: float,
        group: bool,
        columns: Sequence[RunColumn],
        group_key: Callable[[RunRow], str | None] = lambda r: r.sweep,
    ) -> None:
        """Show these rows in this order, touching only cells whose text changed."""
        cursor_key = self.current_key()
        wanted: list[tuple[str, list[Text]]] = []
        if group:
            groups: dict[str | None, list[RunRow]] = {}
            for row in rows:
                groups.setdefault(group_key(row), []).append(row)
            for sweep, members in groups.items():
                wanted.append((GROUP_PREFIX + (sweep or ""), group_cells(sweep, members, columns)))
                wanted.extend(
                    (r.name, row_cells(r, r.name in marked, now, columns)) for r in members
                )
        else:
            wanted = [(r.name, row_cells(r, r.name in marked, now, columns)) for r in rows]
        column_keys = [column.key for column in columns]
        grown = group != self._grouped
        self._grouped = group
        for _, cells in wanted:  # group headers too, so "▾ NAME (n)" is never cut
            for column, cell in zip(column_keys, cells, strict=False):
                if cell.cell_len > self._widths.get((group, column), 0):
                    self._widths[group, column] = cell.cell_len
                    grown = True
        if grown or column_keys != [c.key for c in self.columns_shown] or not self.columns:
            old_layout = self._layout
            self._rebuild_columns(columns)
            self._layout = old_layout  # still what the cursor was placed in
        layout = [key for key, _ in wanted]
        if layout != self._layout or not self.row_count:
            old_layout = self._layout
            self.clear()
            for key, cells in wanted:
                self.add_row(*cells, key=key)
            self._layout = layout
            self._cells = dict(wanted)
            if layout:
                self.move_cursor(row=neighbour(old_layout, layout, cursor_key), animate=False)
            return
        for key, cells in wanted:
            old = self._cells.get(key, [])
            for index, cell in enumerate(cells):
                if index >= len(old) or old[index] != cell:
                    try:
                        self.update_cell(key, column_keys[index], cell)
                    except RowDoesNotExist:
                        continue
            self._cells[key] = cells

    def current_key(self) -> str | None:
        """The key (run handle or 'sweep:NAME') under the cursor."""
        if not self._layout or not 0 <= self.cursor_row < len(self._layout):
            return None
        return self._layout[self.cursor_row]

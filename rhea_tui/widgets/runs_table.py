"""RunsTable: the live table of runs, updated cell by cell so the cursor never jumps."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from rhea_engine.runs.store import RunRow
from rhea_tui.format import RunColumn, compact, status_mark, status_text, tui_columns

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


def row_cells(row: RunRow, marked: bool, now: float, wide: bool) -> list[Text]:
    """The cells of one run, in column order."""
    return [run_cell(column, row, marked, now) for column in tui_columns(wide)]


def group_cells(sweep: str | None, rows: list[RunRow], wide: bool) -> list[Text]:
    """A header row of one sweep group: its name and a count per status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    summary = " ".join(f"{status_mark(s)}{n}" for s, n in sorted(counts.items()))
    name = f"▾ {sweep or '(no sweep)'} ({len(rows)})"
    cells = [Text(name, style="bold reverse"), Text(summary, style="bold")]
    return cells + [Text("") for _ in tui_columns(wide)[2:]]


class RunsTable(DataTable[Text]):
    """One row per run (key: the run handle); group header rows have key 'sweep:NAME'."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=1)
        self.wide = True
        self._layout: list[str] = []
        self._cells: dict[str, list[Text]] = {}
        self._widths: dict[str, int] = {}

    def set_wide(self, wide: bool) -> None:
        if wide != self.wide or not self.columns:
            self.wide = wide
            self._rebuild_columns()

    def _rebuild_columns(self) -> None:
        """Columns get fixed widths (grown to fit the data), so every row renders whole."""
        self.clear(columns=True)
        for column in tui_columns(self.wide):
            width = min(MAX_WIDTH, max(len(column.label), self._widths.get(column.key, 0)))
            self.add_column(column.label, key=column.key, width=width)
        self._layout = []
        self._cells = {}

    def show(
        self,
        rows: list[RunRow],
        marked: set[str],
        now: float,
        group: bool,
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
                wanted.append(
                    (GROUP_PREFIX + (sweep or ""), group_cells(sweep, members, self.wide))
                )
                wanted.extend(
                    (r.name, row_cells(r, r.name in marked, now, self.wide)) for r in members
                )
        else:
            wanted = [(r.name, row_cells(r, r.name in marked, now, self.wide)) for r in rows]
        column_keys = [column.key for column in tui_columns(self.wide)]
        grown = False
        for key, cells in wanted:
            if key.startswith(GROUP_PREFIX):
                continue
            for column, cell in zip(column_keys, cells, strict=False):
                if cell.cell_len > self._widths.get(column, 0):
                    self._widths[column] = cell.cell_len
                    grown = True
        if grown or not self.columns:
            self._rebuild_columns()
        layout = [key for key, _ in wanted]
        if layout != self._layout:
            self.clear()
            for key, cells in wanted:
                self.add_row(*cells, key=key)
            self._layout = layout
            self._cells = dict(wanted)
            if cursor_key in layout:
                self.move_cursor(row=layout.index(cursor_key), animate=False)
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

"""RunsScreen: the live table of runs, with filter, grouping, marks and run actions."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.markup import escape
from textual.widgets import Footer, Input, Static

from rhea_engine.runs.store import RunRow
from rhea_engine.vocabulary import STATUSES
from rhea_tui import actions
from rhea_tui.filtering import TypedFilter, error_lines, passes, read_filter
from rhea_tui.format import status_mark, status_style
from rhea_tui.messages import PollNow
from rhea_tui.screens.base import StateScreen
from rhea_tui.state import TuiState
from rhea_tui.widgets.runs_table import GROUP_PREFIX, RunsTable

SORTS = (
    ("id", "created"),
    ("last_test_loss", "test loss"),
    ("last_train_loss", "train loss"),
    ("best_test_loss", "best test loss"),
    ("max_eln_violation", "ELN max"),
    ("learning_rate", "lr"),
    ("last_epoch", "epoch"),
    ("started", "age"),
)
HELP = [
    ("Enter", "open the run (on a sweep header: compare the sweep)"),
    ("Space", "mark or unmark the run (on a sweep header: all its runs)"),
    ("c", "compare the marked runs"),
    ("C", "compare the whole sweep of the selected run"),
    ("n", "start a new run"),
    ("s / r", "stop / resume the selected run"),
    ("e", "export the selected run (TorchScript)"),
    ("d", "delete the selected run (asks first)"),
    ("/", "filter: words, sweep:NAME, status:running (Enter keeps, Esc hides)"),
    ("", "or an expression: status = running and learning_rate < 1e-4, tag = x, name ~ 'lr*'"),
    ("f", "cycle the status filter"),
    ("g", "group by sweep"),
    ("o / O", "cycle the sort column / reverse the order"),
    ("Esc", "clear filter and marks"),
    ("q", "quit"),
]
AGE_REFRESH_S = 20.0
STATUS_FILTERS = (None, "running", "failed", "diverged", "completed", "stopped", "lost", "queued")
FILTER_PLACEHOLDER = "filter: words, or key op value (status = running and best_test_loss < 0.5)"


def _sort_value(row: RunRow, field: str) -> float:
    value = getattr(row, field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return float(value)


class RunsScreen(StateScreen):
    """All runs of the home; Enter opens one, Space marks, c compares the marked runs."""

    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("enter", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("C", "compare_sweep", "Cmp sweep"),
        Binding("n", "new_run", "New"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("d", "delete", "Delete"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "cycle_status", "Status", show=False),
        Binding("g", "group", "Group", show=False),
        Binding("o", "cycle_sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse", show=False),
        Binding("escape", "clear", "Clear", show=False),
        Binding("q", "quit", "Quit"),
    ]
    KEY_HELP = HELP

    def __init__(self, state: TuiState) -> None:
        super().__init__(state)
        self.marked: set[str] = set()
        self.filter_text = ""
        self.typed = TypedFilter()
        self.status_filter: str | None = None
        self.sort_index = 0
        self.descending = False
        self.group = False
        self.shown: list[RunRow] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-summary")
        yield RunsTable(id="runs-table")
        with Vertical(id="runs-filter-box"):
            yield Input(placeholder=FILTER_PLACEHOLDER, id="runs-filter")
            yield Static("", id="runs-filter-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        self.update_data()
        # ages move on even when no run does; only cells whose text changed are redrawn
        self.set_interval(AGE_REFRESH_S, self._tick)

    def _tick(self) -> None:
        if self.app.screen is self:
            self.update_data()

    def on_resize(self, event: Resize) -> None:
        table = self.query_one(RunsTable)
        wide = event.size.width >= 100
        if wide != table.wide:
            table.set_wide(wide)
            self.update_data()

    # --- drawing ---------------------------------------------------------------------
    def visible_rows(self) -> list[RunRow]:
        # an expression that cannot be used keeps the latest one that could
        matches = self.state.matches if self.state.where is not None else None
        status = self.typed.status or self.status_filter
        rows = [
            row
            for row in self.state.runs
            if passes(row, self.typed, matches) and (status is None or row.status == status)
        ]
        field = SORTS[self.sort_index][0]
        rows.sort(key=lambda r: (_sort_value(r, field), r.id), reverse=self.descending)
        if self.descending:  # missing values stay last either way
            rows.sort(key=lambda r: _sort_value(r, field) == math.inf)
        if self.group:
            order: dict[str | None, int] = {}
            for row in rows:
                order.setdefault(row.sweep, len(order))
            rows.sort(key=lambda r: order[r.sweep])
        return rows

    def update_data(self) -> None:
        """Redraw the table and summary from the app's latest poll."""
        if not self.is_mounted:
            return
        self.shown = self.visible_rows()
        self.query_one(RunsTable).show(self.shown, self.marked, self.state.clock(), self.group)
        self.query_one("#runs-summary", Static).update(self.summary())

    def summary(self) -> str:
        counts = self.state.status_counts()
        parts = [f"[b]{len(self.state.runs)} runs[/b]"]
        parts += [
            Text(f"{status_mark(s)} {counts[s]}", style=status_style(s)).markup
            for s in STATUSES
            if counts.get(s)
        ]
        if not self.state.loaded:
            parts = ["reading runs…"]
        elif not self.state.runs:
            parts.append("none yet: press n to start one")
        view = [f"sort {SORTS[self.sort_index][1]} {'↓' if self.descending else '↑'}"]
        # the filter in force (while the box holds a mistake, the latest one that worked)
        applied = self.filter_text if self.typed.error is None else self.state.where or ""
        if applied or self.status_filter:
            typed = escape(f"{applied} {self.status_filter or ''}".strip())
            view.append(f"filter {typed}")
            view.append(f"{len(self.shown)} shown")
        if self.group:
            view.append("grouped by sweep")
        if self.marked:
            view.append(f"{len(self.marked)} marked")
        return "  ".join(parts) + "  [dim]│ " + " · ".join(view) + "[/dim]"

    # --- selection -------------------------------------------------------------------
    def current(self) -> str | None:
        return self.query_one(RunsTable).current_key()

    def current_run(self) -> str | None:
        key = self.current()
        if key is None:
            self.notify("No run selected.", severity="warning")
            return None
        if key.startswith(GROUP_PREFIX):
            self.notify("That is a sweep header; choose one of its runs.", severity="warning")
            return None
        return key

    def current_sweep(self) -> str | None:
        key = self.current()
        if key is None:
            return None
        if key.startswith(GROUP_PREFIX):
            return key[len(GROUP_PREFIX) :] or None
        row = self.state.row(key)
        return row.sweep if row else None

    # --- actions ---------------------------------------------------------------------
    @on(RunsTable.RowSelected)
    def _row_selected(self, event: RunsTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        key = self.current()
        if key is None:
            return
        if key.startswith(GROUP_PREFIX):
            self.action_compare_sweep()
            return
        from rhea_tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(self.state, key))

    def action_mark(self) -> None:
        key = self.current()
        if key is None:
            return
        table = self.query_one(RunsTable)
        if key.startswith(GROUP_PREFIX):
            sweep = key[len(GROUP_PREFIX) :] or None
            members = {r.name for r in self.shown if r.sweep == sweep}
            if members <= self.marked:
                self.marked -= members
            else:
                self.marked |= members
        else:
            self.marked ^= {key}
        self.update_data()
        table.action_cursor_down()

    def action_compare(self) -> None:
        handles = [r.name for r in self.state.runs if r.name in self.marked]
        if not handles:
            self.notify("Mark runs with Space first, or press C to compare a sweep.")
            return
        from rhea_tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.state, handles, f"{len(handles)} marked runs"))

    def action_compare_sweep(self) -> None:
        sweep = self.current_sweep()
        if sweep is None:
            self.notify("The selected run belongs to no sweep.", severity="warning")
            return
        handles = [r.name for r in self.state.runs if r.sweep == sweep]
        from rhea_tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.state, handles, f"sweep:{sweep}"))

    def action_new_run(self) -> None:
        from rhea_tui.screens.new_run import NewRunScreen

        self.app.push_screen(NewRunScreen(self.state))

    def action_stop(self) -> None:
        handle = self.current_run()
        if handle:
            self.act(f"Stopping {handle}", actions.stop_run, handle)

    def action_resume(self) -> None:
        handle = self.current_run()
        if handle:
            self.act(f"Resuming {handle}", actions.resume_run, handle)

    def action_export(self) -> None:
        handle = self.current_run()
        if handle:
            self.act(f"Exporting {handle}", actions.export_run, handle)

    def action_delete(self) -> None:
        handle = self.current_run()
        if not handle:
            return
        from rhea_tui.screens.dialogs import ConfirmScreen

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.marked.discard(handle)
                self.act(f"Deleting {handle}", actions.delete_run, handle)

        question = f"Delete run [b]{handle}[/b] and its directory (events, log, checkpoints)?"
        self.app.push_screen(ConfirmScreen(question, "Delete"), confirmed)

    def action_filter(self) -> None:
        self.query_one("#runs-filter-box").add_class("shown")
        box = self.query_one("#runs-filter", Input)
        box.value = self.filter_text
        box.focus()

    def set_filter(self, text: str) -> None:
        """Read the filter box's text; an expression goes to the next poll (at once)."""
        self.filter_text = text.strip()
        keys = {key for row in self.state.runs for key in row.config}
        self.typed = read_filter(self.filter_text, keys)
        error = self.query_one("#runs-filter-error", Static)
        error.update(error_lines(self.typed.error) if self.typed.error else "")
        error.set_class(self.typed.error is not None, "shown")
        if self.typed.error is None and self.typed.expression != self.state.where:
            self.state.where = self.typed.expression
            if self.state.where is not None:
                self.post_message(PollNow())
        self.update_data()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#runs-filter-box").remove_class("shown")
        self.query_one(RunsTable).focus()

    def action_clear(self) -> None:
        box = self.query_one("#runs-filter", Input)
        if box.has_focus:
            self.query_one("#runs-filter-box").remove_class("shown")
            self.query_one(RunsTable).focus()
            return
        self.status_filter = None
        self.marked.clear()
        self.set_filter("")

    def action_cycle_status(self) -> None:
        index = STATUS_FILTERS.index(self.status_filter)
        self.status_filter = STATUS_FILTERS[(index + 1) % len(STATUS_FILTERS)]
        self.update_data()

    def action_group(self) -> None:
        self.group = not self.group
        self.update_data()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.update_data()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self.update_data()

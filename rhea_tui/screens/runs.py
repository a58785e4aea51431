"""RunsScreen: the live table of runs, with filter, grouping, marks and run actions."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.widgets import Footer, Input, Static

from rhea_engine.runs.store import RunRow
from rhea_tui import actions
from rhea_tui.filtering import error_lines
from rhea_tui.messages import PollNow
from rhea_tui.runs_view import SORTS, STATUS_FILTERS, RunsView
from rhea_tui.screens.base import StateScreen
from rhea_tui.state import TuiState
from rhea_tui.widgets.runs_table import GROUP_PREFIX, RunsTable
from rhea_tui.widgets.summary import counts_text, devices_text, getting_started

HELP = [
    ("Enter", "open the run (on a sweep header: compare the sweep)"),
    ("Space", "mark or unmark the run (on a sweep header: all its runs)"),
    ("c", "compare the marked runs"),
    ("C", "compare the whole sweep of the selected run"),
    ("n", "start a new run or sweep (N: prefilled from the selected run)"),
    ("s / r", "stop (asks first) / resume the selected run"),
    ("e", "export the selected run (TorchScript, in a separate process)"),
    ("d", "delete the selected run (asks first)"),
    ("L", "the run's whole log, full screen (follows it; / searches)"),
    ("y / Y", "copy the run's handle / directory to the clipboard (OSC 52)"),
    ("/", "filter: words, sweep:NAME, status:running (Enter keeps, Esc hides)"),
    ("", "or an expression: status = running and learning_rate < 1e-4, tag = x, name ~ 'lr*'"),
    ("f", "cycle the status filter"),
    ("w", "group by sweep (with the swept parameters as columns)"),
    ("o / O", "cycle the sort column / reverse the order"),
    ("g / G, Home / End", "first / last row"),
    ("b", "ring the terminal bell when a run ends (toggle)"),
    ("Esc", "clear filter and marks"),
    ("q", "quit"),
]
AGE_REFRESH_S = 20.0
FILTER_PLACEHOLDER = "filter: words, or key op value (status = running and best_test_loss < 0.5)"


class RunsScreen(StateScreen):
    """All runs of the home; Enter opens one, Space marks, c compares the marked runs."""

    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("enter", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("C", "compare_sweep", "Cmp sweep", show=False),
        Binding("n", "new_run", "New"),
        Binding("N", "clone_run", "Clone", show=False),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume", show=False),
        Binding("e", "export", "Export", show=False),
        Binding("d", "delete", "Delete", show=False),
        Binding("L", "full_log", "Log"),
        Binding("y", "copy_handle", "Copy", show=False),
        Binding("Y", "copy_path", "Copy path", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("f", "cycle_status", "Status", show=False),
        Binding("w", "group", "Group", show=False),
        Binding("o", "cycle_sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse", show=False),
        Binding("b", "toggle_bell", "Bell", show=False),
        Binding("escape", "clear", "Clear", show=False),
        Binding("q", "quit", "Quit"),
    ]
    KEY_HELP = HELP

    def __init__(self, state: TuiState) -> None:
        super().__init__(state)
        self.view = RunsView()
        self.shown: list[RunRow] = []

    @property
    def marked(self) -> set[str]:
        return self.view.marked

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-summary")
        yield Static("", id="runs-devices")
        yield Static(getting_started(self.state.home), id="runs-empty")
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
        self.update_data()

    # --- drawing ---------------------------------------------------------------------
    def update_data(self) -> None:
        """Redraw the table and summary from the app's latest poll."""
        if not self.is_mounted:
            return
        now = self.state.clock()
        self.shown = self.view.rows(self.state.runs, now, self.matches)
        columns = self.view.columns(self.size.width or 80, self.shown, now)
        table = self.query_one(RunsTable)
        table.show(self.shown, self.marked, now, self.view.group, columns)
        self.query_one("#runs-summary", Static).update(
            counts_text(
                self.state.runs, self.state.loaded, len(self.shown), self.view, self.state.where
            )
        )
        devices = devices_text(self.state.runs)
        self.query_one("#runs-devices", Static).update(devices or "")
        self.query_one("#runs-devices").set_class(devices is not None, "shown")
        empty = self.state.loaded and not self.state.runs
        self.set_class(empty, "-empty")

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
                self.marked.difference_update(members)
            else:
                self.marked.update(members)
        else:
            self.marked.symmetric_difference_update({key})
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

        self.app.push_screen(CompareScreen(self.state, handles, f"sweep:{sweep}", sweep=sweep))

    def action_new_run(self) -> None:
        from rhea_tui.screens.new_run import NewRunScreen

        self.app.push_screen(NewRunScreen(self.state))

    def action_clone_run(self) -> None:
        handle = self.current_run()
        row = self.state.row(handle) if handle else None
        if row is not None:
            from rhea_tui.screens.new_run import NewRunScreen

            self.app.push_screen(NewRunScreen(self.state, clone=row))

    def action_stop(self) -> None:
        handle = self.current_run()
        if handle:
            self.confirm_stop(handle)

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

    def action_full_log(self) -> None:
        handle = self.current_run()
        if handle:
            from rhea_tui.screens.log import LogScreen

            self.app.push_screen(LogScreen(self.state, handle))

    def action_copy_handle(self) -> None:
        handle = self.current_run()
        if handle:
            self.copy_run(handle, path=False)

    def action_copy_path(self) -> None:
        handle = self.current_run()
        if handle:
            self.copy_run(handle, path=True)

    def action_filter(self) -> None:
        self.query_one("#runs-filter-box").add_class("shown")
        box = self.query_one("#runs-filter", Input)
        box.value = self.view.filter_text
        box.focus()

    @property
    def matches(self) -> set[int] | None:
        """The ids the poll found for the filter expression (None: no expression, or none yet);
        an expression that cannot be used keeps the latest one that could."""
        return self.state.matches if self.state.where is not None else None

    def set_filter(self, text: str) -> None:
        """Read the filter box's text; an expression goes to the next poll (at once)."""
        keys = {key for row in self.state.runs for key in row.config}
        typed = self.view.set_filter(text, keys)
        error = self.query_one("#runs-filter-error", Static)
        error.update(error_lines(typed.error) if typed.error else "")
        error.set_class(typed.error is not None, "shown")
        if typed.error is None and typed.expression != self.state.where:
            self.state.where = typed.expression
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
        cleared = self.view.clear()
        self.notify(f"Cleared {cleared}." if cleared else "No filter or marks to clear.", timeout=3)
        self.set_filter("")

    def action_cycle_status(self) -> None:
        index = STATUS_FILTERS.index(self.view.status_filter)
        self.view.status_filter = STATUS_FILTERS[(index + 1) % len(STATUS_FILTERS)]
        self.update_data()

    def action_group(self) -> None:
        self.view.group = not self.view.group
        self.update_data()

    def action_cycle_sort(self) -> None:
        self.view.sort_index = (self.view.sort_index + 1) % len(SORTS)
        self.update_data()

    def action_reverse_sort(self) -> None:
        self.view.descending = not self.view.descending
        self.update_data()

"""RunScreen: live plots of one run, its status/config panel and the tail of its log."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Footer, Static

from rhea_engine.runs.store import RunRow
from rhea_engine.vocabulary import TASKS
from rhea_tui import actions
from rhea_tui.format import (
    MAX_ELN_LABEL,
    compact,
    epochs_done,
    max_eln_text,
    status_label,
    status_style,
)
from rhea_tui.screens.base import StateScreen
from rhea_tui.state import TuiState
from rhea_tui.widgets.details import details_panel, log_text
from rhea_tui.widgets.plots import MetricPlot

TASK_LABELS = {
    "stability": "stab",
    "direction": "dir",
    "growthrate": "growth",
    "unphysical": "unphys",
}
HELP = [
    ("Esc", "back to the runs"),
    ("i", "show or hide the status and config panel"),
    ("l", "show or hide the log tail"),
    ("L", "the whole log, full screen (follows it; / searches)"),
    ("a", "show every config key, or only those changed from the defaults"),
    ("s / r", "stop (asks first) / resume this run"),
    ("e", "export this run (in a separate process)"),
    ("y / Y", "copy the run's handle / directory to the clipboard (OSC 52)"),
    ("Tab", "move between plots, panel and log (arrows scroll)"),
    ("q", "quit"),
]


class RunScreen(StateScreen):
    """One run: loss curves, ELN violation, learning rate, details and log."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("i", "toggle_details", "Details"),
        Binding("l", "toggle_log", "Log"),
        Binding("L", "full_log", "Full log", show=False),
        Binding("a", "toggle_config", "All config", show=False),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export", show=False),
        Binding("y", "copy_handle", "Copy", show=False),
        Binding("Y", "copy_path", "Copy path", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    KEY_HELP = HELP

    def __init__(self, state: TuiState, handle: str) -> None:
        super().__init__(state)
        self.handle = handle
        self._log_key: tuple[object, ...] = ()
        self._details_key: tuple[object, ...] = ()
        self.all_config = False

    def compose(self) -> ComposeResult:
        yield Static(self.handle, id="run-title")
        with Horizontal(id="run-body"):
            with Grid(id="run-plots"):
                yield MetricPlot("loss", id="plot-loss")
                yield MetricPlot("test loss per task", id="plot-tasks")
                yield MetricPlot("ELN violation", id="plot-eln")
                yield MetricPlot("learning rate", id="plot-lr", legend=False)
            with VerticalScroll(id="run-details"):
                yield Static("", id="run-details-text")
        with VerticalScroll(id="run-log"):
            yield Static("", id="run-log-text")
        yield Footer()

    def on_mount(self) -> None:
        self.watch_runs([self.handle])
        self.update_data()

    def on_unmount(self) -> None:
        self.state.unwatch([self.handle])

    def update_data(self) -> None:
        """Redraw what changed since the last poll: plots, title, panel, log."""
        if not self.is_mounted:
            return
        self.draw_plots()
        row = self.state.run(self.handle)
        if row is None:
            title = f"[b]{self.handle}[/b]  " + (
                "reading…" if not self.state.loaded else "[red]no such run (deleted?)[/red]"
            )
            self.query_one("#run-title", Static).update(title)
            return
        self.query_one("#run-title", Static).update(self.title_markup(row))
        self.draw_details(row)
        self.draw_log(row)

    def title_markup(self, row: RunRow) -> str:
        """Name, status, progress and figures: as many as the width holds, in this order."""
        parts = [
            f"[b]{row.name}[/b]",
            f"[{status_style(row.status)}]{status_label(row.status)}[/]",
            f"epoch {epochs_done(row)}",
            f"test {compact(row.last_test_loss)}",
            f"best {compact(row.best_test_loss)}",
            f"{MAX_ELN_LABEL} {max_eln_text(row, compact)}",
            f"lr {compact(row.config.get('learning_rate'))}",
            f"lr now {compact(row.learning_rate)}",
        ]
        width = (self.size.width or 80) - 2
        shown = parts[:2]
        for part in parts[2:]:
            if Text.from_markup("  ".join([*shown, part])).cell_len > width:
                break
            shown.append(part)
        return "  ".join(shown)

    def draw_plots(self) -> None:
        series = self.state.series.get(self.handle, {})
        self.query_one("#plot-loss", MetricPlot).set_series(
            {"train": series.get("train_loss", []), "test": series.get("test_loss", [])}
        )
        self.query_one("#plot-tasks", MetricPlot).set_series(
            {TASK_LABELS.get(task, task): series.get(f"{task}_test_loss", []) for task in TASKS}
        )
        eln = {"train": series.get("ELN_violation", [])}
        if series.get("ELN_violation_test"):
            eln["test"] = series["ELN_violation_test"]
        self.query_one("#plot-eln", MetricPlot).set_series(eln)
        self.query_one("#plot-lr", MetricPlot).set_series({"lr": series.get("learning_rate", [])})

    def draw_details(self, row: RunRow) -> None:
        now = self.state.clock()
        details_key = (
            row.status,
            row.last_epoch,
            len(row.checkpoints),
            len(row.evaluation),
            int(now // 60),
            self.all_config,
        )
        if details_key != self._details_key:
            self._details_key = details_key
            self.query_one("#run-details-text", Static).update(
                details_panel(row, now, self.all_config)
            )

    def draw_log(self, row: RunRow) -> None:
        size, tail = self.state.logs.get(self.handle, (0, ""))
        log_key = (size, row.status, row.error)
        if log_key != self._log_key:
            self._log_key = log_key
            self.query_one("#run-log-text", Static).update(log_text(row, tail))
            self.query_one("#run-log", VerticalScroll).scroll_end(animate=False)

    # --- actions ---------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_details(self) -> None:
        self.toggle_class("show-details")

    def action_toggle_config(self) -> None:
        self.all_config = not self.all_config
        self.update_data()

    def action_toggle_log(self) -> None:
        self.toggle_class("hide-log")

    def action_stop(self) -> None:
        self.confirm_stop(self.handle)

    def action_full_log(self) -> None:
        from rhea_tui.screens.log import LogScreen

        self.app.push_screen(LogScreen(self.state, self.handle))

    def action_copy_handle(self) -> None:
        self.copy_run(self.handle, path=False)

    def action_copy_path(self) -> None:
        self.copy_run(self.handle, path=True)

    def action_resume(self) -> None:
        self.act(f"Resuming {self.handle}", actions.resume_run, self.handle)

    def action_export(self) -> None:
        self.act(f"Exporting {self.handle}", actions.export_run, self.handle)

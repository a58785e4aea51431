"""RunScreen: live plots of one run, its status/config panel and the tail of its log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from rhea_engine.vocabulary import TASKS
from rhea_tui.widgets.details import details_panel, log_text
from rhea_tui.widgets.plots import MetricPlot
from rhea_tui.widgets.series import fmt_num, status_text

if TYPE_CHECKING:
    from rhea_tui.app import RheaApp

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
    ("a", "show every config key, or only those changed from the defaults"),
    ("s / r", "stop / resume this run"),
    ("e", "export this run"),
    ("Tab", "move between plots, panel and log (arrows scroll)"),
    ("q", "quit"),
]


class RunScreen(Screen[None]):
    """One run: loss curves, ELN violation, learning rate, details and log."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("i", "toggle_details", "Details"),
        Binding("l", "toggle_log", "Log"),
        Binding("a", "toggle_config", "All config", show=False),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, handle: str) -> None:
        super().__init__()
        self.handle = handle
        self._log_key: tuple[object, ...] = ()
        self._details_key: tuple[object, ...] = ()
        self.all_config = False

    @property
    def rhea(self) -> RheaApp:
        return self.app  # type: ignore[return-value]

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
        self.rhea.watch_runs([self.handle])
        self.update_data()

    def on_unmount(self) -> None:
        self.rhea.unwatch_runs([self.handle])

    def on_screen_resume(self) -> None:
        self.update_data()

    def update_data(self) -> None:
        """Redraw what changed since the last poll: plots, title, panel, log."""
        if not self.is_mounted:
            return
        series = self.rhea.series.get(self.handle, {})
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
        row = self.rhea.details.get(self.handle) or self.rhea.row(self.handle)
        if row is None:
            title = f"[b]{self.handle}[/b]  " + (
                "reading…" if not self.rhea.loaded else "[red]no such run (deleted?)[/red]"
            )
            self.query_one("#run-title", Static).update(title)
            return
        label, style = status_text(row.status)
        total = row.total_epochs or row.config.get("epochs") or "?"
        title = (
            f"[b]{row.name}[/b]  [{style}]{label}[/]  epoch {row.last_epoch or 0}/{total}"
            f"  train {fmt_num(row.last_train_loss)}  test {fmt_num(row.last_test_loss)}"
            f"  ELN {fmt_num(row.max_eln_violation)}"
        )
        self.query_one("#run-title", Static).update(title)
        now = self.rhea.clock()
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
        size, tail = self.rhea.logs.get(self.handle, (0, ""))
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
        from rhea_tui.actions import stop_run

        self.rhea.act_on_run(f"Stopping {self.handle}", stop_run, self.handle)

    def action_resume(self) -> None:
        from rhea_tui.actions import resume_run

        self.rhea.act_on_run(f"Resuming {self.handle}", resume_run, self.handle)

    def action_export(self) -> None:
        from rhea_tui.actions import export_run

        self.rhea.act_on_run(f"Exporting {self.handle}", export_run, self.handle, on_store=False)

    def action_help(self) -> None:
        from rhea_tui.screens.dialogs import HelpScreen

        self.app.push_screen(HelpScreen(HELP))

    def action_quit(self) -> None:
        self.app.exit()

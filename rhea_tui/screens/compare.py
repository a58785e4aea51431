"""CompareScreen: runs side by side (small multiples), overlaid, with differing parameters."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from rhea_engine.compare import differing_params, evaluation_table, metric_table
from rhea_engine.runs.store import RunRow
from rhea_tui.format import TRAIN_ELN_MARK, cell, compact, status_text
from rhea_tui.screens.base import StateScreen
from rhea_tui.state import TuiState
from rhea_tui.widgets.plots import MetricPlot

OVERLAY_METRICS = ("test_loss", "train_loss", "ELN_violation", "learning_rate")
MAX_MULTIPLES = 12
HELP = [
    ("Esc", "back to the runs"),
    ("m", "change the overlaid metric (test, train, ELN violation, lr)"),
    ("↑ ↓ PgUp PgDn", "scroll"),
    ("Tab", "move to the tables (← → scroll them sideways)"),
    ("q", "quit"),
]


def number(value: float | None) -> str:
    return compact(value, 3)


class CompareScreen(StateScreen):
    """Marked runs or a sweep: one small plot per run, one overlaid plot, and two tables."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("m", "cycle_metric", "Metric"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    KEY_HELP = HELP

    def __init__(
        self, state: TuiState, handles: list[str], title: str, sweep: str | None = None
    ) -> None:
        super().__init__(state)
        self.handles = list(handles)
        self.title_text = title
        self.sweep = sweep
        self.metric_index = 0
        self._table_key: tuple[object, ...] = ()

    @property
    def metric(self) -> str:
        return OVERLAY_METRICS[self.metric_index]

    def compose(self) -> ComposeResult:
        yield Static("", id="cmp-title")
        with VerticalScroll(id="cmp-body"):
            yield MetricPlot(self.metric, id="cmp-overlay")
            with Grid(id="cmp-multiples"):
                for index, handle in enumerate(self.handles[:MAX_MULTIPLES]):
                    yield MetricPlot(handle, classes="multiple", id=f"multiple-{index}")
            yield Static("[b]differing parameters[/b]", classes="cmp-heading")
            yield DataTable(id="cmp-params", cursor_type="row", zebra_stripes=True)
            yield Static("[b]metrics[/b] (best = lowest)", classes="cmp-heading")
            yield DataTable(id="cmp-metrics", cursor_type="row", zebra_stripes=True)
            yield Static(
                "[b]final evaluation[/b] (model vs Box3D vs identity)", classes="cmp-heading"
            )
            yield DataTable(id="cmp-eval", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.watch_runs(self.handles)
        self.query_one("#cmp-body").focus()
        self.update_data()

    def on_unmount(self) -> None:
        self.state.unwatch(self.handles)

    def rows(self) -> list[RunRow]:
        return [row for row in map(self.state.run, self.handles) if row is not None]

    def update_data(self) -> None:
        if not self.is_mounted:
            return
        series = self.state.series
        shown = len(self.handles[:MAX_MULTIPLES])
        more = f" (small multiples of the first {shown})" if len(self.handles) > shown else ""
        self.query_one("#cmp-title", Static).update(
            f"[b]compare {self.title_text}[/b]  {len(self.handles)} runs{more}  "
            f"[dim]│ overlay: {self.metric} (m changes)[/dim]"
        )
        overlay = self.query_one("#cmp-overlay", MetricPlot)
        overlay.title = f"{self.metric}, all runs"
        overlay.set_series({h: series.get(h, {}).get(self.metric, []) for h in self.handles})
        for index, handle in enumerate(self.handles[:MAX_MULTIPLES]):
            per_run = series.get(handle, {})
            self.query_one(f"#multiple-{index}", MetricPlot).set_series(
                {"train": per_run.get("train_loss", []), "test": per_run.get("test_loss", [])}
            )
        rows = self.rows()
        # the metrics table reads the series too: redraw it when they arrive or grow
        key = tuple(
            (r.name, r.status, r.last_epoch, len(r.evaluation), len(series.get(r.name, {})))
            for r in rows
        )
        if key != self._table_key and rows:
            self._table_key = key
            self.fill_params(rows)
            self.fill_metrics(rows)
            self.fill_evaluation(rows)

    def fill_params(self, rows: list[RunRow]) -> None:
        table = self.query_one("#cmp-params", DataTable)
        table.clear(columns=True)
        params = differing_params({row.name: row.config for row in rows})
        table.add_column("parameter", key="parameter")
        for row in rows:
            table.add_column(row.name, key=row.name)
        if not params:
            table.add_row("(all parameters equal)", *["" for _ in rows])
        for name, values in params.items():
            table.add_row(name, *(cell(values.get(row.name), number) for row in rows))

    def fill_metrics(self, rows: list[RunRow]) -> None:
        table = self.query_one("#cmp-metrics", DataTable)
        table.clear(columns=True)
        entries = metric_table(rows, self.state.series, "test_loss")
        columns = ["run", "status", "epoch", "best test", "@", "last test", "last train", "ELN max"]
        for column in columns:
            table.add_column(column)
        best = min(
            (e["best_test_loss"] for e in entries if e["best_test_loss"] is not None),
            default=None,
        )
        for entry in entries:
            winner = best is not None and entry["best_test_loss"] == best
            table.add_row(
                Text(("★ " if winner else "  ") + entry["run"], style="bold" if winner else ""),
                status_text(entry["status"]),
                f"{entry['epochs'] or 0}/{entry['total_epochs'] or '?'}",
                number(entry["best_test_loss"]),
                str(entry["best_test_epoch"] or "-"),
                number(entry["last_test_loss"]),
                number(entry["last_train_loss"]),
                number(entry["max_ELN_violation"])
                + (TRAIN_ELN_MARK if entry.get("max_ELN_metric") == "ELN_violation" else ""),
            )

    def fill_evaluation(self, rows: list[RunRow]) -> None:
        table = self.query_one("#cmp-eval", DataTable)
        table.clear(columns=True)
        evaluation = evaluation_table({row.name: row.evaluation for row in rows})
        table.add_column("")
        for quantity in evaluation["quantities"]:
            table.add_column(quantity)
        if not evaluation["rows"]:
            table.add_row("(no run has finished its evaluation)")
        for entry in evaluation["rows"]:
            values = entry["values"]
            table.add_row(
                entry["label"], *(number(values.get(q)) for q in evaluation["quantities"])
            )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_cycle_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(OVERLAY_METRICS)
        self.update_data()

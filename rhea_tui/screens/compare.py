"""CompareScreen: runs side by side (small multiples), overlaid, with differing parameters,
and a sweep's Pareto front when it has several objectives."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from rhea_engine.compare import differing_params, evaluation_table, metric_table
from rhea_engine.errors import RheaError
from rhea_engine.runs.store import RunRow
from rhea_tui.format import (
    FRONT_MARK,
    FRONT_NOTE,
    MAX_ELN_LABEL,
    TRAIN_ELN_MARK,
    cell,
    compact,
    left_out_text,
    objective_label,
    status_text,
)
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


def sweep_front(store: Any, sweep: str) -> dict[str, Any] | None:
    """The sweep's trade-offs (rhea_engine.pareto) when it has several objectives, else None.
    Latencies are the ones measured when the trials ended: nothing is timed here."""
    from rhea_engine.pareto import sweep_tradeoffs
    from rhea_engine.sweep.trials import objectives_of, sweep_entry

    if len(objectives_of(sweep_entry(store, sweep).get("spec") or {})) < 2:
        return None
    return sweep_tradeoffs(store, sweep, measure=False)


class CompareScreen(StateScreen):
    """Marked runs or a sweep: one small plot per run, one overlaid plot, the tables, and a
    sweep's Pareto front when it has several objectives."""

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
        self._front_key: tuple[str, ...] | None = None  # the completed runs of the last front

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
            with Vertical(id="cmp-pareto"):
                yield Static("", id="cmp-pareto-title", classes="cmp-heading")
                yield DataTable(id="cmp-pareto-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="cmp-pareto-left")
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
        completed = tuple(r.name for r in rows if r.status == "completed")
        if self.sweep is not None and completed != self._front_key:
            self._front_key = completed  # a trial that completes may move the front
            self.load_front(self.sweep)

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
        columns = [
            "run",
            "status",
            "epoch",
            "best test",
            "@",
            "last test",
            "last train",
            MAX_ELN_LABEL,
        ]
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

    @work(thread=True, exclusive=True, group="pareto", exit_on_error=False)
    def load_front(self, sweep: str) -> None:
        try:
            result = sweep_front(self.state.store, sweep)
        except RheaError as exc:
            result = {"error": exc.message}
        self.app.call_from_thread(self.fill_front, result)

    def fill_front(self, result: dict[str, Any] | None) -> None:
        """The trials with their objective values, the front first and marked."""
        if not self.is_mounted:
            return
        self.query_one("#cmp-pareto").set_class(result is not None, "shown")
        if result is None:
            return
        title = self.query_one("#cmp-pareto-title", Static)
        table = self.query_one("#cmp-pareto-table", DataTable)
        table.clear(columns=True)
        if "error" in result:
            title.update(Text(f"Pareto front: {result['error']}"))
            return
        title.update(f"[b]Pareto front[/b] [dim]({FRONT_NOTE})[/dim]")
        trials = result["trials"]
        params = list(trials[0]["params"]) if trials else []
        for column in ["", "run"]:
            table.add_column(column)
        for name, direction in zip(result["objectives"], result["directions"], strict=True):
            table.add_column(objective_label(name, direction))
        for param in params:
            table.add_column(param)
        if not trials:
            table.add_row("", "(no completed trial has every objective yet)")
        for trial in sorted(trials, key=lambda t: (not t["front"], t["values"][0])):
            style = "bold" if trial["front"] else "dim"
            table.add_row(
                FRONT_MARK if trial["front"] else "",
                Text(trial["run"], style=style),
                *(Text(number(v), style=style) for v in trial["values"]),
                *(cell(trial["params"].get(p), number) for p in params),
            )
        self.query_one("#cmp-pareto-left", Static).update(
            Text(left_out_text(result["left_out"]), style="dim")
        )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_cycle_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(OVERLAY_METRICS)
        self.update_data()

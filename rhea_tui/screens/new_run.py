"""NewRunScreen: a form for a training run or a sweep, here or on Slurm, checked by the engine."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from rhea_engine.errors import RheaError
from rhea_engine.runs.store import RunRow
from rhea_tui.actions import ActionResult
from rhea_tui.form import (
    FIELDS,
    PLACEHOLDERS,
    SLURM_FIELDS,
    FieldError,
    FormRequest,
    clone_values,
    form_defaults,
    read_form,
    resolve_run,
)
from rhea_tui.messages import PollNow
from rhea_tui.state import TuiState

FIELD_IDS = [f for f, _, _, _ in FIELDS] + [f for f, _ in SLURM_FIELDS]


class NewRunScreen(ModalScreen[str | None]):
    """Fill in, then Ctrl+S (or the Launch button) starts the run or sweep; Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "launch", "Launch", priority=True),
    ]

    def __init__(self, state: TuiState, clone: RunRow | None = None) -> None:
        super().__init__()
        self.state = state
        self.clone = clone
        self.request: FormRequest | None = None
        self.resolved: dict[str, Any] | None = None
        self.launching = False

    def compose(self) -> ComposeResult:
        values = clone_values(self.clone.config) if self.clone else form_defaults()
        title = f"New run, from {self.clone.name}" if self.clone else "New run"
        with VerticalScroll(classes="dialog form"):
            yield Static(
                f"[b]{title}[/b]  [dim]a comma list makes a sweep · Ctrl+S launches · "
                "Esc cancels[/dim]"
            )
            with Grid(id="form-grid"):
                for field_id, label, _, _ in FIELDS:
                    yield Label(label, classes="form-label")
                    yield Input(
                        values[field_id],
                        placeholder=PLACEHOLDERS.get(field_id, ""),
                        id=f"field-{field_id}",
                    )
            with Horizontal(classes="form-switches"):
                yield Checkbox("detach (runs on after the TUI quits)", True, id="field-detach")
                yield Checkbox("on Slurm", False, id="field-slurm")
            with Grid(id="slurm-grid"):
                for field_id, label in SLURM_FIELDS:
                    yield Label(label, classes="form-label")
                    yield Input(
                        placeholder="HH:MM:SS" if field_id == "time" else "", id=f"field-{field_id}"
                    )
            yield Static("", id="form-plan")
            yield Static("", id="form-warning")
            yield Static("", id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch (Ctrl+S)", variant="primary", id="launch", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#field-lr", Input).focus()
        for checkbox in self.query(Checkbox):
            checkbox.compact = True
        self.check()

    @property
    def on_slurm(self) -> bool:
        return self.query_one("#field-slurm", Checkbox).value

    def values(self) -> dict[str, str]:
        return {f: self.query_one(f"#field-{f}", Input).value for f in FIELD_IDS}

    def check(self) -> bool:
        """Validate the whole form; show the first error next to its field."""
        values = self.values()
        slurm = {f: values[f] for f, _ in SLURM_FIELDS} if self.on_slurm else None
        self.query_one("#slurm-grid").set_class(self.on_slurm, "shown")
        error: FieldError | None = None
        plan = warning = ""
        self.request, self.resolved = None, None
        try:
            self.request = read_form(values, slurm)
            if self.request.submitted:
                from rhea_tui.actions import plan_sweep

                plan = plan_sweep(self.state.home, self.request)
            else:
                self.resolved = resolve_run(self.request)
                from rhea_engine.runs.preflight import login_node_warning

                warning = login_node_warning(self.resolved["device"]) or ""
        except FieldError as exc:
            error = exc
        except RheaError as exc:
            error = FieldError(None, exc.message)
        for input_ in self.query(Input):
            input_.set_class(error is not None and input_.id == f"field-{error.field}", "-invalid")
        self.show("#form-error", error.message if error else "")
        self.show("#form-warning", warning)
        self.show("#form-plan", plan)
        launch = self.query_one("#launch", Button)
        launch.disabled = error is not None
        launch.label = (
            "Launch sweep (Ctrl+S)"
            if self.request and self.request.sweep
            else ("Submit (Ctrl+S)" if self.on_slurm else "Launch (Ctrl+S)")
        )
        self.query_one("#field-detach").display = not (self.request and self.request.submitted)
        return error is None

    def show(self, selector: str, text: str) -> None:
        message = self.query_one(selector, Static)
        message.update(Text(text))
        message.set_class(bool(text), "shown")

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self.check()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_launch()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_launch(self) -> None:
        if self.launching or not self.check() or self.request is None:
            return
        self.launching = True
        self.show("#form-plan", "starting…")
        detach = self.query_one("#field-detach", Checkbox).value
        self._launch(self.request, self.resolved, detach)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _launch(self, request: FormRequest, resolved: dict[str, Any] | None, detach: bool) -> None:
        from rhea_tui import actions

        try:
            if request.submitted:
                result = actions.start_sweep(self.state.store, request)
            else:
                assert resolved is not None
                config, data = actions.prepare_config(self.state.home, resolved, request.name)
                result = actions.launch_new_run(
                    self.state.store, config, data, request.name, detach
                )
        except RheaError as exc:
            self.app.call_from_thread(self._failed, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - shown in the form, never a crash
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._started, result, detach or request.submitted)

    def _failed(self, message: str) -> None:
        self.launching = False
        self.show("#form-plan", "")
        self.show("#form-error", message)

    def _started(self, result: ActionResult, detach: bool) -> None:
        if not detach:
            self.state.attached.add(result.handle)
        self.app.notify(result.message, title="New run", markup=False)
        self.app.post_message(PollNow())
        self.dismiss(result.handle)

"""NewRunScreen: a form for one training run, validated through the engine's config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from rhea_engine import config as rhea_config
from rhea_engine.errors import RheaError
from rhea_engine.runs.rundir import check_run_name
from rhea_tui.actions import ActionResult
from rhea_tui.messages import PollNow
from rhea_tui.state import TuiState

# (field id, label, CLI shortcut, config keys it sets)
FIELDS = (
    ("name", "name", None, ()),
    ("lr", "learning rate", "lr", ("learning_rate",)),
    ("epochs", "epochs", "epochs", ("epochs",)),
    ("width", "widths", "width", tuple(f"width_{h}" for h in rhea_config.HEADS)),
    ("nhidden", "depth", "nhidden", tuple(f"nhidden_{h}" for h in rhea_config.HEADS)),
    ("architecture", "architecture", "architecture", ("architecture",)),
    ("symmetry", "symmetry", "symmetry", ("symmetry",)),
    ("seed", "seed", "seed", ("random_seed",)),
    ("device", "device", "device", ("device",)),
    ("data", "data files", "data", ("database_list",)),
    ("stable_data", "stable data", "stable_data", ("stable_database_list",)),
)
PLACEHOLDERS = {
    "name": "optional: run1, run2, … by default",
    "data": "comma-separated .h5; empty: synthetic default",
    "stable_data": "comma-separated .h5 (optional)",
    "device": "auto, cpu, cuda or cuda:N",
    "architecture": ", ".join(rhea_config.ARCHITECTURES),
    "symmetry": ", ".join(rhea_config.SYMMETRIES),
}


def form_defaults() -> dict[str, str]:
    cfg = rhea_config.default_config()
    return {
        "name": "",
        "lr": f"{cfg.learning_rate:g}",
        "epochs": str(cfg.epochs),
        "width": str(cfg.width_shared),
        "nhidden": str(cfg.nhidden_shared),
        "architecture": cfg.architecture,
        "symmetry": cfg.symmetry,
        "seed": str(cfg.random_seed),
        "device": cfg.device,
        "data": "",
        "stable_data": "",
    }


def validate(values: dict[str, str]) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(resolved config dict, None, None), or (None, field id, one-paragraph error)."""
    name = values.get("name", "").strip()
    if name:
        try:
            check_run_name(name)
        except RheaError as exc:
            return None, "name", exc.message
    for field_id in ("data", "stable_data"):
        for path in (p.strip() for p in values.get(field_id, "").split(",")):
            if path and not Path(path).expanduser().is_file():
                return None, field_id, f"The data file '{path}' does not exist or is not a file."
    shortcuts = {
        shortcut: values[field_id].strip() or None
        for field_id, _, shortcut, _ in FIELDS
        if shortcut is not None
    }
    # `full` treats every flavor alike, so the form does not average the heavies with it
    base = {"average_heavies_in_final_state": False} if shortcuts["symmetry"] == "full" else {}
    try:
        resolved = rhea_config.resolve(shortcuts=shortcuts, base=base)
    except RheaError as exc:
        key = re.search(r"'([A-Za-z_]+)'", exc.message)
        field = next((f for f, _, _, keys in FIELDS if key and key.group(1) in keys), None)
        return None, field, exc.message
    return resolved.to_dict(), None, None


class NewRunScreen(ModalScreen[str | None]):
    """Fill in, then Ctrl+S (or the Launch button) starts the run; Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "launch", "Launch", priority=True),
    ]

    def __init__(self, state: TuiState) -> None:
        super().__init__()
        self.state = state
        self.resolved: dict[str, Any] | None = None
        self.launching = False

    def compose(self) -> ComposeResult:
        defaults = form_defaults()
        with Vertical(classes="dialog form"):
            yield Static("[b]New run[/b]  [dim]Tab moves, Ctrl+S launches, Esc cancels[/dim]")
            with Grid(id="form-grid"):
                for field_id, label, _, _ in FIELDS:
                    yield Label(label, classes="form-label")
                    yield Input(
                        defaults[field_id],
                        placeholder=PLACEHOLDERS.get(field_id, ""),
                        id=f"field-{field_id}",
                    )
            yield Checkbox("detach (keeps running after the TUI quits)", True, id="field-detach")
            yield Static("", id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch (Ctrl+S)", variant="primary", id="launch")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#field-lr", Input).focus()
        self.check()

    def values(self) -> dict[str, str]:
        return {f: self.query_one(f"#field-{f}", Input).value for f, _, _, _ in FIELDS}

    def check(self) -> bool:
        """Validate the whole form; show the first error next to its field."""
        resolved, field, error = validate(self.values())
        for input_ in self.query(Input):
            input_.set_class(input_.id == f"field-{field}", "-invalid")
        message = self.query_one("#form-error", Static)
        message.update(Text(error or ""))
        message.set_class(bool(error), "shown")
        self.query_one("#launch", Button).disabled = error is not None
        self.resolved = resolved
        return error is None

    @on(Input.Changed)
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
        if self.launching or not self.check() or self.resolved is None:
            return
        self.launching = True
        self.query_one("#form-error", Static).update("[b]starting…[/b]")
        name = self.values()["name"].strip() or None
        detach = self.query_one("#field-detach", Checkbox).value
        self._launch(dict(self.resolved), name, detach)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _launch(self, values: dict[str, Any], name: str | None, detach: bool) -> None:
        from rhea_tui.actions import launch_new_run, prepare_config

        try:
            config, data = prepare_config(self.state.home, values, name)
            result = launch_new_run(self.state.store, config, data, name, detach)
        except RheaError as exc:
            self.app.call_from_thread(self._failed, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - shown in the form, never a crash
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._started, result, detach)

    def _failed(self, message: str) -> None:
        self.launching = False
        error = self.query_one("#form-error", Static)
        error.update(Text(message))
        error.add_class("shown")

    def _started(self, result: ActionResult, detach: bool) -> None:
        if not detach:
            self.state.attached.add(result.handle)
        self.app.notify(result.message, title="New run", markup=False)
        self.app.post_message(PollNow())
        self.dismiss(result.handle)

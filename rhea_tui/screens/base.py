"""StateScreen: a screen that draws from the TuiState and asks the app for polls and actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.screen import Screen

from rhea_engine.runs.store import Store
from rhea_tui.actions import ActionResult
from rhea_tui.messages import PollNow, RunAction
from rhea_tui.state import TuiState


class StateScreen(Screen[None]):
    """Reads `state`; redraws in `update_data` (called after each poll that changed something)."""

    KEY_HELP: ClassVar[list[tuple[str, str]]] = []  # (keys, what they do) for the ? dialog

    def __init__(self, state: TuiState) -> None:
        super().__init__()
        self.state = state

    def update_data(self) -> None:
        """Redraw from the state; screens override it."""

    def on_screen_resume(self) -> None:
        self.update_data()

    def watch_runs(self, handles: list[str]) -> None:
        """Follow these runs' series, details and logs while this screen is open."""
        if self.state.watch(handles):
            self.post_message(PollNow())

    def act(self, title: str, action: Callable[[Store, str], ActionResult], handle: str) -> None:
        """Run `action(store, handle)` on a worker; the app reports its result."""
        self.post_message(RunAction(title, action, handle))

    def confirm_stop(self, handle: str) -> None:
        """Stop a run after a yes: it cannot be undone (resume continues from a checkpoint)."""
        from rhea_tui import actions
        from rhea_tui.screens.dialogs import ConfirmScreen

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.act(f"Stopping {handle}", actions.stop_run, handle)

        question = (
            f"Stop run [b]{handle}[/b]? Its worker writes a checkpoint and ends as stopped; "
            "r resumes it from that checkpoint later."
        )
        self.app.push_screen(ConfirmScreen(question, "Stop"), confirmed)

    def copy_run(self, handle: str, path: bool) -> None:
        """Copy a run's handle, or its directory, to the clipboard (OSC 52)."""
        row = self.state.run(handle)
        if path:
            directory = row.path if row is not None and row.path is not None else None
            text = str(directory or self.state.home / "runs" / handle)
        else:
            text = handle
        self.app.copy_to_clipboard(text)  # OSC 52: works over SSH and through tmux
        what = "the run directory" if path else "the run handle"
        self.notify(f"Copied {what}: {text}", timeout=3, markup=False)

    def action_toggle_bell(self) -> None:
        self.state.bell = not self.state.bell
        rings = "rings" if self.state.bell else "stays quiet"
        self.notify(f"The terminal bell {rings} when a run ends (b toggles).", timeout=3)

    def action_help(self) -> None:
        from rhea_tui.screens.dialogs import HelpScreen

        self.app.push_screen(HelpScreen(self.KEY_HELP))

    def action_quit(self) -> None:
        self.app.exit()

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

    def action_help(self) -> None:
        from rhea_tui.screens.dialogs import HelpScreen

        self.app.push_screen(HelpScreen(self.KEY_HELP))

    def action_quit(self) -> None:
        self.app.exit()

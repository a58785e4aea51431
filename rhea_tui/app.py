"""RheaApp: the `rhea tui` application: a poll timer, its worker, and the run actions' worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.worker import Worker

from rhea_engine.errors import RheaError
from rhea_engine.runs.store import RunRow, Store
from rhea_tui.actions import ActionResult
from rhea_tui.format import news_text
from rhea_tui.live import PollRequest
from rhea_tui.messages import Polled, PollFailed, PollNow, RunAction
from rhea_tui.screens.base import StateScreen
from rhea_tui.state import TuiState


def _reason(exc: Exception) -> tuple[str, str | None]:
    """(message, title) of an error to show: a RheaError's own words, else its type."""
    if isinstance(exc, RheaError):
        return exc.message, exc.title
    return f"{type(exc).__name__}: {exc}", None


class RheaApp(App[None]):
    """Watch, compare and launch training runs of one Rhea home."""

    TITLE = "rhea"
    CSS_PATH = Path(__file__).with_name("app.tcss")
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide"), (170, "-huge")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        home: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 1.0,
        store_factory: Callable[[Path], Store] = Store,
        bell: bool = False,
    ) -> None:
        super().__init__()
        self.state = TuiState(home, clock=clock, store_factory=store_factory)
        self.state.bell = bell
        self.poll_interval = poll_interval
        self._poll: Worker[None] | None = None
        self._last_error = ""

    # --- lifecycle -------------------------------------------------------------------
    def on_load(self) -> None:
        self.poll_now()  # read the store while the first screen is being built

    def on_mount(self) -> None:
        from rhea_tui.screens.runs import RunsScreen

        self.set_interval(self.poll_interval, self.poll_now)
        self.push_screen(RunsScreen(self.state))

    def on_unmount(self) -> None:
        from rhea_tui.actions import stop_run

        for handle in sorted(self.state.attached):
            try:
                stop_run(self.state.store, handle)
            except RheaError:
                pass  # already finished
        self.state.close()

    # --- polling ---------------------------------------------------------------------
    def poll_now(self) -> None:
        """Start a poll unless one is running (polls never overlap)."""
        if self._poll is None or self._poll.is_finished:
            self._poll = self._poll_worker(self.state.request())

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_worker(self, request: PollRequest) -> None:
        try:
            result = self.state.read(request)
        except Exception as exc:  # noqa: BLE001 - a poll error must never end the app
            self.post_message(PollFailed(_reason(exc)[0]))
            return
        self.post_message(Polled(result))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._poll and event.worker.is_finished and self.state.wants_read:
            self.poll_now()  # a screen began watching a run while that poll ran

    def on_polled(self, message: Polled) -> None:
        changed = self.state.apply(message.result)
        self._last_error = ""
        if changed:
            self.refresh_screens()
        self.announce(self.state.take_news())

    def announce(self, rows: list[RunRow]) -> None:
        """A toast per run that ended (and the bell, when it is on)."""
        for row in rows:
            bad = row.status in ("failed", "diverged", "lost", "missing")
            severity = "error" if bad else "information"
            self.notify(news_text(row), title=f"Run {row.name}", severity=severity, markup=False)
        if rows and self.state.bell:
            self.bell()

    def on_poll_failed(self, message: PollFailed) -> None:
        if message.error != self._last_error:
            self._last_error = message.error
            self.notify(
                message.error, title="Cannot read the run store", severity="error", markup=False
            )

    def on_poll_now(self, message: PollNow) -> None:
        self.poll_now()

    def refresh_screens(self) -> None:
        """Let the top screen redraw from the state; a modal on top defers it."""
        screen = self.screen
        if isinstance(screen, StateScreen) and not isinstance(screen, ModalScreen):
            screen.update_data()

    # --- actions on runs ---------------------------------------------------------------
    def on_run_action(self, message: RunAction) -> None:
        self._act(message.title, message.action, message.handle)

    @work(thread=True, group="action", exit_on_error=False)
    def _act(self, title: str, action: Callable[[Store, str], ActionResult], handle: str) -> None:
        """Run one action on the store from this worker thread and report its result."""
        self.call_from_thread(self.notify, f"{title}…", timeout=2)
        try:
            result = action(self.state.store, handle)
        except Exception as exc:  # noqa: BLE001 - report, never crash the monitor
            message, error_title = _reason(exc)
            self.call_from_thread(
                self.notify, message, title=error_title or title, severity="error", markup=False
            )
        else:
            self.call_from_thread(self.notify, result.message, title=title, markup=False)
        self.call_from_thread(self.poll_now)

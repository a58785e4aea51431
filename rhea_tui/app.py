"""RheaApp: the `rhea tui` application, with one self-rescheduling poll worker."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from rhea_engine.errors import RheaError
from rhea_engine.runs.store import RunRow, Store
from rhea_tui.live import (
    PollRequest,
    PollResult,
    Series,
    StoreGateway,
    last_epoch_of,
    merge_series,
    poll,
    row_signature,
)


@dataclass
class Polled(Message):
    """A poll finished with new data."""

    result: PollResult

    def can_replace(self, message: Message) -> bool:
        return False  # each result carries increments; none may be dropped


@dataclass
class PollFailed(Message):
    """A poll raised; the message is shown once until it changes."""

    error: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PollFailed)


class RheaApp(App[None]):
    """Watch, compare and launch training runs of one Rhea home."""

    TITLE = "rhea"
    CSS_PATH = Path(__file__).with_name("app.tcss")
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        home: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 1.0,
        store_factory: Callable[[Path], Store] = Store,
    ) -> None:
        super().__init__()
        self.home = Path(home)
        self.clock = clock
        self.poll_interval = poll_interval
        self.gateway = StoreGateway(self.home, store_factory)
        self.runs: list[RunRow] = []
        self.version: int | None = None
        self.loaded = False  # the first poll has arrived
        self.polls = 0
        self.series: dict[str, dict[str, Series]] = {}
        self.logs: dict[str, tuple[int, str]] = {}
        self.details: dict[str, RunRow] = {}  # watched runs with checkpoints and evaluation
        self.watched: dict[str, int] = {}  # handle -> number of screens watching it
        self.attached: set[str] = set()  # runs started without detach: stopped on quit
        self._poll_timer: Timer | None = None
        self._polling = False
        self._poll_again = False
        self._force = True
        self._last_error = ""
        self._pending_reset: set[str] = set()  # newly watched: take only a full series

    # --- lifecycle -------------------------------------------------------------------
    def on_load(self) -> None:
        self.start_poll()  # read the store while the first screen is being built

    def on_mount(self) -> None:
        from rhea_tui.screens.runs import RunsScreen

        self.push_screen(RunsScreen())

    def on_unmount(self) -> None:
        if self.attached:
            from rhea_tui.actions import stop_run

            for handle in sorted(self.attached):
                try:
                    self.gateway.call(functools.partial(stop_run, handle=handle))
                except RheaError:
                    pass  # already finished
        self.gateway.close()

    # --- polling ---------------------------------------------------------------------
    def start_poll(self) -> None:
        """Poll now, unless a poll is in flight (then poll again as soon as it ends)."""
        if self._polling:
            self._poll_again = True
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._polling = True
        request = PollRequest(
            version=self.version,
            watched={h: last_epoch_of(self.series.get(h, {})) for h in self.watched},
            log_sizes={h: self.logs[h][0] for h in self.watched if h in self.logs},
            force=self._force,
            held={h: row_signature(self.details[h]) for h in self.watched if h in self.details},
        )
        self._force = False
        self._poll_worker(request)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_worker(self, request: PollRequest) -> None:
        try:
            result = self.gateway.call(lambda store: poll(store, self.home, request))
        except RheaError as exc:
            self.post_message(PollFailed(exc.message))
            return
        except Exception as exc:  # noqa: BLE001 - a poll error must never end the app
            self.post_message(PollFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(Polled(result))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "poll" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self._polling = False
        delay = 0.01 if self._poll_again else self.poll_interval
        self._poll_again = False
        self._poll_timer = self.set_timer(delay, self.start_poll)

    def on_polled(self, message: Polled) -> None:
        result = message.result
        self.polls += 1
        self.version = result.version
        if result.runs is not None:
            self.runs = result.runs
            names = {row.name for row in result.runs}
            for handle in list(self.series):
                if handle not in names:
                    del self.series[handle]
        for handle, fresh in result.metrics.items():
            if handle not in self.watched:
                continue  # the screen that asked for it has closed meanwhile
            if handle in self._pending_reset:
                if handle not in result.reset:
                    continue  # read before this watch began: wait for the full series
                self._pending_reset.discard(handle)
            held = self.series.setdefault(handle, {})
            self.series[handle] = merge_series(held, fresh, handle in result.reset)
        self.logs.update({h: tail for h, tail in result.logs.items() if h in self.watched})
        self.details.update({h: row for h, row in result.details.items() if h in self.watched})
        first = not self.loaded
        self.loaded = True
        if self._last_error:
            self._last_error = ""
        if first or result.changed:
            self.refresh_screens()

    def on_poll_failed(self, message: PollFailed) -> None:
        if message.error != self._last_error:
            self._last_error = message.error
            self.notify(
                message.error, title="Cannot read the run store", severity="error", markup=False
            )

    def refresh_screens(self) -> None:
        """Let the top screen redraw from the held data; a modal on top defers it."""
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        update = getattr(screen, "update_data", None)
        if update is not None:
            update()

    # --- watching runs ---------------------------------------------------------------
    def watch_runs(self, handles: list[str]) -> None:
        """Start reading the series and log tail of these runs on every poll."""
        fresh = False
        for handle in handles:
            if handle not in self.watched:
                fresh = True
                self.series.pop(handle, None)
                self._pending_reset.add(handle)
            self.watched[handle] = self.watched.get(handle, 0) + 1
        if fresh:
            self._force = True
            self.start_poll()

    def unwatch_runs(self, handles: list[str]) -> None:
        for handle in handles:
            count = self.watched.get(handle, 0) - 1
            if count <= 0:
                self.watched.pop(handle, None)
                self.series.pop(handle, None)
                self.logs.pop(handle, None)
                self.details.pop(handle, None)
                self._pending_reset.discard(handle)
            else:
                self.watched[handle] = count

    # --- actions on runs ---------------------------------------------------------------
    @work(thread=True, group="action", exit_on_error=False)
    def act_on_run(
        self,
        title: str,
        action: Callable[..., str],
        *args: object,
        on_store: bool = True,
    ) -> None:
        """Run `action(store, *args)` (on the store thread, or here for long work like
        export) and report its message; a RheaError becomes an error notification."""
        self.call_from_thread(self.notify, f"{title}…", timeout=2)
        try:
            if on_store:
                message = self.gateway.call(lambda store: action(store, *args))
            else:
                message = action(self.home, *args)
        except RheaError as exc:
            self.call_from_thread(
                self.notify, exc.message, title=exc.title, severity="error", markup=False
            )
        except Exception as exc:  # noqa: BLE001 - report, never crash the monitor
            self.call_from_thread(
                self.notify,
                f"{type(exc).__name__}: {exc}",
                title=title,
                severity="error",
                markup=False,
            )
        else:
            if message:
                self.call_from_thread(self.notify, message, title=title, markup=False)
        self._force = True
        self.call_from_thread(self.start_poll)

    def row(self, handle: str) -> RunRow | None:
        for row in self.runs:
            if row.name == handle:
                return row
        return None

"""TuiState: what the TUI knows of one Rhea home, as plain data that tests drive without Textual.

It holds the runs list, the series, log tails and details of the runs that screens watch,
and the one Store connection (whose own lock serialises every use). A poll is three steps:
`request()` on the UI thread, `read(request)` on a worker thread, `apply(result)` back on
the UI thread; `refresh()` does all three at once for tests and scripts. Runs that ended
between two polls wait in `news` for the app to notify them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from rhea_engine.runs.store import RunRow, Store
from rhea_engine.vocabulary import ACTIVE_STATUSES
from rhea_tui.live import PollRequest, PollResult, Series, poll, row_signature

# A run that reaches one of these from queued or running is news: the TUI notifies it.
NEWS_STATUSES = ("completed", "failed", "diverged", "lost", "pruned", "missing")
NO_HOME_VERSION = -1  # the data version of a home without runs.db (a real one is >= 1)


def is_home(path: Path) -> bool:
    """The folder has a run store or a runs folder already (else the TUI creates none)."""
    return (path / "runs.db").exists() or (path / "runs").is_dir()


def merge_series(
    held: dict[str, Series], fresh: dict[str, Series], reset: bool
) -> dict[str, Series]:
    """Append new points to the held series (or replace them when the run started over)."""
    if reset:
        return {name: list(points) for name, points in fresh.items()}
    for name, points in fresh.items():
        held.setdefault(name, []).extend(points)
    return held


def ended_since(before: list[RunRow], after: list[RunRow]) -> list[RunRow]:
    """Runs that were queued or running in `before` and reached a NEWS_STATUSES status."""
    was = {row.name: row.status for row in before}
    return [r for r in after if was.get(r.name) in ACTIVE_STATUSES and r.status in NEWS_STATUSES]


def last_epoch_of(series: dict[str, Series]) -> int:
    return max((points[-1][0] for points in series.values() if points), default=0)


class TuiState:
    """Runs of one home, and the series, logs and details of the watched ones."""

    def __init__(
        self,
        home: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        store_factory: Callable[[Path], Store] = Store,
    ) -> None:
        self.home = Path(home)
        self.clock = clock
        self.runs: list[RunRow] = []
        self.version: int | None = None
        self.loaded = False  # the first poll has been applied
        self.polls = 0
        self.series: dict[str, dict[str, Series]] = {}
        self.logs: dict[str, tuple[int, str]] = {}  # handle -> (stdout.log size, tail)
        self.details: dict[str, RunRow] = {}  # watched runs with checkpoints and evaluation
        self.watched: dict[str, int] = {}  # handle -> number of screens watching it
        self.attached: set[str] = set()  # runs started without detach: stopped on quit
        self.where: str | None = None  # the runs screen's filter expression (see filtering)
        self.matches: set[int] | None = None  # ids of the runs that match `matched_where`
        self.matched_where: str | None = None
        self.matched_version: int | None = None
        self.news: list[RunRow] = []  # runs that ended since the app last took them
        self.bell = False  # ring the terminal bell with the news (b toggles)
        self._unread: set[str] = set()  # newly watched: only a full series may be merged
        self._asked: set[str] = set()  # handles the latest request covered
        self._store_factory = store_factory
        self._store: Store | None = None
        self._opening = threading.Lock()  # guards only the first opening of the store

    # --- the store --------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The home's Store, opened on first use (from whichever thread needs it first)."""
        with self._opening:
            if self._store is None:
                self._store = self._store_factory(self.home)
            return self._store

    def read(self, request: PollRequest) -> PollResult:
        """One poll (on a worker thread); a folder that is no Rhea home yet reads as empty
        and stays untouched until a run is started in it."""
        if self._store is None and not is_home(self.home):
            return PollResult(NO_HOME_VERSION, [] if request.version != NO_HOME_VERSION else None)
        return poll(self.store, self.home, request)

    def close(self) -> None:
        with self._opening:
            if self._store is not None:
                self._store.close()
                self._store = None

    # --- polling ----------------------------------------------------------------------
    def request(self) -> PollRequest:
        """What a poll must read, given what is held now."""
        self._asked = set(self.watched)
        return PollRequest(
            version=self.version,
            watched={h: last_epoch_of(self.series.get(h, {})) for h in self.watched},
            log_sizes={h: self.logs[h][0] for h in self.watched if h in self.logs},
            held={
                h: row_signature(self.details[h])
                for h in self.watched
                if h in self.details and h not in self._unread
            },
            where=self.where,
            matched_where=self.matched_where,
            matched_version=self.matched_version,
        )

    def apply(self, result: PollResult) -> bool:
        """Merge a poll's result; True when the screens have something new to draw."""
        self.polls += 1
        self.version = result.version
        if result.runs is not None:
            if self.loaded:
                self.news += ended_since(self.runs, result.runs)
            self.runs = result.runs
            names = {row.name for row in result.runs}
            for handle in [h for h in self.series if h not in names]:
                del self.series[handle]
        for handle, fresh in result.metrics.items():
            if handle not in self.watched:
                continue  # the screen that asked for it has closed meanwhile
            if handle in self._unread:
                if handle not in result.reset:
                    continue  # read before this watch began: wait for the full series
                self._unread.discard(handle)
            held = self.series.get(handle, {})
            self.series[handle] = merge_series(held, fresh, handle in result.reset)
        if result.matched_where is not None:
            self.matches, self.matched_where = result.matches, result.matched_where
            self.matched_version = result.version
        self.logs.update({h: tail for h, tail in result.logs.items() if h in self.watched})
        self.details.update(
            {
                h: row
                for h, row in result.details.items()
                if h in self.watched and h not in self._unread
            }
        )
        first = not self.loaded
        self.loaded = True
        return first or result.changed

    def refresh(self) -> bool:
        """One whole poll on this thread (tests, scripts); True when something changed."""
        return self.apply(self.read(self.request()))

    def take_news(self) -> list[RunRow]:
        """The runs that ended since the last call (each once)."""
        news, self.news = self.news, []
        return news

    @property
    def wants_read(self) -> bool:
        """A newly watched run was not in the latest request: poll again without waiting."""
        return bool(self._unread - self._asked)

    # --- watching runs ----------------------------------------------------------------
    def watch(self, handles: list[str]) -> bool:
        """Read these runs' series, details and log tail on every poll; True if any is new."""
        new = False
        for handle in handles:
            if handle not in self.watched:
                new = True
                self.series.pop(handle, None)
                self._unread.add(handle)
                self._asked.discard(handle)  # a request already under way does not serve it
            self.watched[handle] = self.watched.get(handle, 0) + 1
        return new

    def unwatch(self, handles: list[str]) -> None:
        for handle in handles:
            count = self.watched.get(handle, 0) - 1
            if count > 0:
                self.watched[handle] = count
                continue
            self.watched.pop(handle, None)
            self.series.pop(handle, None)
            self.logs.pop(handle, None)
            self.details.pop(handle, None)
            self._unread.discard(handle)

    # --- reading ----------------------------------------------------------------------
    def row(self, handle: str) -> RunRow | None:
        """The listed row of a run (None when it is not, or no longer, in the home)."""
        for row in self.runs:
            if row.name == handle:
                return row
        return None

    def run(self, handle: str) -> RunRow | None:
        """The fullest row held for a run: its details when watched, else its listed row."""
        return self.details.get(handle) or self.row(handle)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.runs:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

"""One poll of the run store for the TUI: ingest, then read only what the TUI does not hold yet."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rhea_engine.errors import FilterError, UnknownRunError
from rhea_engine.runs import rundir
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.store import RunRow, Store
from rhea_engine.vocabulary import ACTIVE_STATUSES, TASKS

Series = list[tuple[int, float]]

# Metrics the run and compare screens plot; everything else stays in the database.
PLOT_METRICS = (
    "train_loss",
    "test_loss",
    "ELN_violation",
    "ELN_violation_test",
    "learning_rate",
    *(f"{task}_test_loss" for task in TASKS),
)
LOG_TAIL_BYTES = 16_384
LOG_SCREEN_BYTES = 4_000_000  # the full-screen log holds at most the last 4 MB of stdout.log


def row_signature(row: RunRow) -> tuple[object, ...]:
    """What must change before a watched run's details and series are read again."""
    return (row.status, row.last_epoch, row.ended, row.error, row.pid)


@dataclass
class PollRequest:
    """What the TUI already holds, so that the poll reads only what is new."""

    version: int | None  # the store's data version of the runs list held (None: none yet)
    watched: dict[str, int]  # handle -> last epoch of its series already held (0: nothing)
    log_sizes: dict[str, int] = field(default_factory=dict)  # handle -> stdout.log size shown
    held: dict[str, tuple[object, ...]] = field(default_factory=dict)  # row_signature of details
    where: str | None = None  # the runs screen's filter expression, matched by SQLite
    matched_where: str | None = None  # the expression whose matches are held...
    matched_version: int | None = None  # ... as of this data version


@dataclass
class PollResult:
    """New data for the TUI; `runs` is None when nothing was ingested since the last poll."""

    version: int
    runs: list[RunRow] | None
    metrics: dict[str, dict[str, Series]] = field(default_factory=dict)  # only new points
    reset: set[str] = field(default_factory=set)  # handles whose series start over
    logs: dict[str, tuple[int, str]] = field(default_factory=dict)  # handle -> (size, tail)
    details: dict[str, RunRow] = field(default_factory=dict)  # watched runs, with checkpoints
    matches: set[int] | None = None  # ids of the runs that match `matched_where`
    matched_where: str | None = None

    @property
    def changed(self) -> bool:
        return (
            self.runs is not None
            or bool(self.metrics)
            or bool(self.logs)
            or self.matches is not None
        )


def run_path(home: Path, handle: str, row: RunRow | None) -> Path:
    return row.path if row is not None and row.path is not None else rundir.run_dir(home, handle)


def read_log_tail(path: Path, known_size: int) -> tuple[int, str] | None:
    """The last LOG_TAIL_BYTES of stdout.log, or None if its size did not change."""
    file = path / rundir.STDOUT_FILE
    try:
        size = os.stat(file).st_size
    except OSError:
        return None
    if size == known_size:
        return None
    with open(file, "rb") as handle:
        handle.seek(max(0, size - LOG_TAIL_BYTES))
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    if size > LOG_TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return size, text


def read_log_from(path: Path, offset: int, limit: int = LOG_SCREEN_BYTES) -> tuple[int, str, bool]:
    """New text of a run's stdout.log since byte `offset`: (new offset, text, started over).

    The first read (offset 0) and a file that shrank (replaced) start over from at most the
    last `limit` bytes, cut at a line start; a torn last line waits for the next read.
    """
    file = path / rundir.STDOUT_FILE
    try:
        size = os.stat(file).st_size
    except OSError:
        return offset, "", False
    again = size < offset
    start = max(0, size - limit) if offset == 0 or again else offset
    if size == start:
        return size, "", again
    with open(file, "rb") as handle:
        handle.seek(start)
        data = handle.read(size - start)
    skipped = 0
    if start > 0 and start != offset:
        skipped = data.find(b"\n") + 1  # drop the partial first line
        data = data[skipped:]
    end = data.rfind(b"\n") + 1  # whole lines only: a torn last line waits
    return start + skipped + end, data[:end].decode("utf-8", errors="replace"), again


def read_run(store: Store, handle: str, known_epoch: int, result: PollResult) -> None:
    """Add one watched run's details and its series since `known_epoch` to `result`."""
    row = store.get_run(handle)
    result.details[handle] = row
    # a live run whose last epoch went back was resumed from an earlier checkpoint
    resumed = row.status in ACTIVE_STATUSES and (row.last_epoch or 0) < known_epoch
    reset = known_epoch == 0 or resumed
    series = store.metrics(handle, list(PLOT_METRICS), since_epoch=0 if reset else known_epoch)
    fresh = {
        name: [(e, v) for e, v in points if reset or e > known_epoch]
        for name, points in series.items()
    }
    fresh = {name: points for name, points in fresh.items() if points}
    if fresh or reset:
        result.metrics[handle] = fresh
    if reset:
        result.reset.add(handle)


def poll(store: Store, home: Path, request: PollRequest) -> PollResult:
    """Ingest new events, then read what changed and what a new watch lacks."""
    refresh(store)
    version = store.data_version()
    runs = store.list_runs() if version != request.version else None
    result = PollResult(version=version, runs=runs)
    matched = (request.matched_where, request.matched_version)
    if request.where is not None and matched != (request.where, version):
        try:
            result.matches = store.run_ids(request.where)
        except FilterError:
            result.matches = set()  # the screen checked it; a key may have gone meanwhile
        result.matched_where = request.where
    by_name = {row.name: row for row in runs} if runs is not None else None
    for handle, known_epoch in request.watched.items():
        row = by_name.get(handle) if by_name is not None else None
        if by_name is not None and row is None:
            continue  # deleted
        held = request.held.get(handle)
        if held is None or (row is not None and row_signature(row) != held):
            try:
                read_run(store, handle, known_epoch, result)
            except UnknownRunError:
                continue  # deleted meanwhile
        tail = read_log_tail(run_path(home, handle, row), request.log_sizes.get(handle, -1))
        if tail is not None:
            result.logs[handle] = tail
    return result

"""The TUI's window on the run store: one store thread, and the poll snapshot it reads."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rhea_engine.runs import rundir
from rhea_engine.runs.store import RunRow, Store
from rhea_engine.vocabulary import ACTIVE_STATUSES, TASKS

T = TypeVar("T")
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


class StoreGateway:
    """Owns the Store on one dedicated thread, so SQLite is never touched from two threads.

    Workers call `call(fn)`; it runs `fn(store)` on the store thread and waits for it. The
    UI thread never calls it (that would block the screen on the database).
    """

    def __init__(self, home: Path, factory: Callable[[Path], Store] = Store) -> None:
        self.home = home
        self._factory = factory
        self._store: Store | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rhea-store")

    def _run(self, fn: Callable[[Store], T]) -> T:
        if self._store is None:
            self._store = self._factory(self.home)
        return fn(self._store)

    def call(self, fn: Callable[[Store], T]) -> T:
        return self._executor.submit(self._run, fn).result()

    def close(self) -> None:
        def _close() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            self._executor.submit(_close).result(timeout=5)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class PollRequest:
    """What the UI already holds, so the poll reads only what is new."""

    version: int | None
    watched: dict[str, int]  # handle -> last epoch already held (0: nothing yet)
    log_sizes: dict[str, int]  # handle -> stdout.log size already shown
    force: bool = False
    held: dict[str, tuple[object, ...]] = field(default_factory=dict)  # row_signature of each


def row_signature(row: RunRow) -> tuple[object, ...]:
    """What must change before a watched run's details and series are read again."""
    return (row.status, row.last_epoch, row.ended, row.error, row.pid)


@dataclass
class PollResult:
    """New data for the UI; `runs` is None when nothing was ingested since the last poll."""

    version: int
    runs: list[RunRow] | None
    metrics: dict[str, dict[str, Series]] = field(default_factory=dict)  # only new points
    reset: set[str] = field(default_factory=set)  # handles whose series start over
    logs: dict[str, tuple[int, str]] = field(default_factory=dict)  # handle -> (size, tail)
    details: dict[str, RunRow] = field(default_factory=dict)  # watched runs, with checkpoints

    @property
    def changed(self) -> bool:
        return self.runs is not None or bool(self.metrics) or bool(self.logs)


def run_path(home: Path, row: RunRow) -> Path:
    return row.path if row.path is not None else rundir.run_dir(home, row.name)


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


def poll(store: Store, home: Path, request: PollRequest) -> PollResult:
    """Ingest new events, then read what changed. Runs on the store thread."""
    store.ingest()
    version = store.data_version()
    changed = request.force or version != request.version
    runs = store.list_runs() if changed else None
    result = PollResult(version=version, runs=runs)
    by_name = {row.name: row for row in runs} if runs is not None else {}
    for handle, known_epoch in request.watched.items():
        row = by_name.get(handle)
        if runs is not None and row is None:
            continue  # deleted
        unchanged = request.held.get(handle) == (row and row_signature(row))
        if row is not None and not (unchanged and known_epoch and not request.force):
            result.details[handle] = store.get_run(handle)
            # a live run whose last epoch went back was resumed from an earlier checkpoint
            resumed = row.status in ACTIVE_STATUSES and (row.last_epoch or 0) < known_epoch
            reset = known_epoch == 0 or resumed
            series = store.metrics(
                handle, list(PLOT_METRICS), since_epoch=0 if reset else known_epoch
            )
            fresh = {
                name: [(e, v) for e, v in points if reset or e > known_epoch]
                for name, points in series.items()
            }
            fresh = {name: points for name, points in fresh.items() if points}
            if fresh or reset:
                result.metrics[handle] = fresh
            if reset:
                result.reset.add(handle)
        if row is not None or runs is None:
            path = run_path(home, row) if row is not None else rundir.run_dir(home, handle)
            tail = read_log_tail(path, request.log_sizes.get(handle, -1))
            if tail is not None:
                result.logs[handle] = tail
    return result


def merge_series(
    held: dict[str, Series], fresh: dict[str, Series], reset: bool
) -> dict[str, Series]:
    """Append new points to the held series (or replace them when the run started over)."""
    if reset:
        return {name: list(points) for name, points in fresh.items()}
    for name, points in fresh.items():
        held.setdefault(name, []).extend(points)
    return held


def last_epoch_of(series: dict[str, Series]) -> int:
    return max((points[-1][0] for points in series.values() if points), default=0)

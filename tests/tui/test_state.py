"""TuiState without Textual: polls of a real store, increments, resets, stale results, logs."""

from __future__ import annotations

import os
from pathlib import Path

from tui_rundata import epoch_metrics

from rhea_engine.runs.procs import this_host
from rhea_engine.runs.rundir import STDOUT_FILE, RunWriter
from rhea_engine.runs.store import Store
from rhea_tui.live import poll
from rhea_tui.state import TuiState


def epochs(state: TuiState, handle: str, metric: str = "test_loss") -> list[int]:
    return [e for e, _ in state.series.get(handle, {}).get(metric, [])]


def live_run(home: Path, name: str, count: int) -> RunWriter:
    """A running run owned by this process with `count` epochs written; the writer stays open."""
    with Store(home) as store:
        row = store.create_run({"epochs": 100}, name=name, status="running")
    assert row.path is not None
    writer = RunWriter(row.path)
    writer.start(device="cpu", total_epochs=100, data=[], host=this_host(), pid=os.getpid())
    for epoch in range(1, count + 1):
        writer.epoch(epoch, epoch_metrics(epoch))
    return writer


def test_first_poll_lists_runs_and_a_quiet_poll_reads_nothing(home: Path) -> None:
    state = TuiState(home)
    try:
        assert not state.loaded
        assert state.refresh() is True
        assert [r.name for r in state.runs] == ["base", "lr-a", "lr-b", "lr-c", "broken", "live"]
        assert state.status_counts()["completed"] == 3
        assert state.row("lr-c") is not None and state.row("lr-c").status == "diverged"
        version, polls = state.version, state.polls
        assert state.refresh() is False  # nothing was written: nothing to redraw
        assert state.version == version and state.polls == polls + 1
    finally:
        state.close()


def test_watched_run_grows_by_increments_and_restarts_on_resume(home: Path) -> None:
    writer = live_run(home, "grow", 5)
    state = TuiState(home)
    try:
        assert state.watch(["grow"]) is True
        assert state.wants_read  # a new watch asks for a poll now
        state.refresh()
        assert not state.wants_read
        assert epochs(state, "grow") == [1, 2, 3, 4, 5]
        assert state.details["grow"].status == "running"
        assert state.request().watched == {"grow": 5}  # the next poll reads from epoch 5 on
        for epoch in (6, 7, 8):
            writer.epoch(epoch, epoch_metrics(epoch))
        state.refresh()
        assert epochs(state, "grow") == list(range(1, 9))
        assert len(epochs(state, "grow", "learning_rate")) == 8
        # resumed from the checkpoint of epoch 3: epoch 4 is written again, with a new value
        writer.epoch(4, {**epoch_metrics(4), "test_loss": 123.0})
        state.refresh()
        assert epochs(state, "grow") == list(range(1, 9))  # read whole again, not appended
        assert dict(state.series["grow"]["test_loss"])[4] == 123.0
    finally:
        writer.close()
        state.close()


def test_result_read_before_a_new_watch_is_not_merged(home: Path) -> None:
    writer = live_run(home, "grow", 5)
    state = TuiState(home)
    try:
        state.watch(["grow"])
        state.refresh()
        writer.epoch(6, epoch_metrics(6))
        stale = poll(state.store, state.home, state.request())  # asks for epochs after 5
        state.unwatch(["grow"])
        assert "grow" not in state.series and "grow" not in state.details
        state.watch(["grow"])  # the screen opens again while that poll was under way
        state.apply(stale)
        assert epochs(state, "grow") == []  # [6] alone would be a broken series
        assert state.wants_read  # so the app polls again at once
        state.refresh()
        assert epochs(state, "grow") == [1, 2, 3, 4, 5, 6]
    finally:
        writer.close()
        state.close()


def test_log_tail_and_deleted_runs(home: Path) -> None:
    state = TuiState(home)
    try:
        state.watch(["broken", "base"])
        state.refresh()
        size, tail = state.logs["broken"]
        assert "epoch    3" in tail
        with open(home / "runs" / "broken" / STDOUT_FILE, "a") as log:
            log.write("one more line\n")
        state.refresh()
        assert state.logs["broken"][0] > size and state.logs["broken"][1].endswith(
            "one more line\n"
        )
        state.store.delete_run("broken")
        state.refresh()
        assert state.row("broken") is None and "broken" not in state.series
        assert epochs(state, "base") == list(range(1, 41))  # the other watch is untouched
        state.unwatch(["broken", "base"])
        assert not state.series and not state.logs and not state.details and not state.watched
        state.watch(["gone"])  # a run that does not exist: one poll, then no busy loop
        state.refresh()
        assert not state.wants_read and "gone" not in state.details
    finally:
        state.close()


def test_two_screens_watching_one_run_keep_it_until_both_close(home: Path) -> None:
    state = TuiState(home)
    try:
        assert state.watch(["lr-a"]) is True
        assert state.watch(["lr-a", "lr-b"]) is True  # lr-b is new
        assert state.watch(["lr-a"]) is False
        state.refresh()
        state.unwatch(["lr-a"])
        state.unwatch(["lr-a", "lr-b"])
        assert epochs(state, "lr-a") == list(range(1, 41)) and "lr-b" not in state.series
        state.unwatch(["lr-a"])
        assert "lr-a" not in state.series
    finally:
        state.close()


def test_runs_that_end_are_news_once_and_what_ended_before_is_not(home: Path) -> None:
    writer = live_run(home, "soon", 3)
    state = TuiState(home)
    try:
        state.refresh()
        assert state.take_news() == []  # broken, lr-c ended before the TUI looked
        writer.status("completed")
        writer.close()
        state.refresh()
        news = state.take_news()
        assert [(r.name, r.status) for r in news] == [("soon", "completed")]
        state.refresh()
        assert state.take_news() == []
    finally:
        state.close()


def test_a_folder_without_runs_reads_as_empty_and_is_left_alone(tmp_path: Path) -> None:
    state = TuiState(tmp_path)
    try:
        assert state.refresh() is True and state.loaded and state.runs == []
        assert state.refresh() is False
        assert list(tmp_path.iterdir()) == []
    finally:
        state.close()

"""Damaged or hostile run directories never make the store unusable for the other runs."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

import pytest

from rhea_engine.errors import RunError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import EVENTS_FILE, RunWriter
from rhea_engine.runs.store import Store

HUGE = 10**30  # beyond SQLite's 64-bit integers
HOSTILE_LINES = [
    {"type": "start", "t": 1.0, "pid": HUGE, "total_epochs": HUGE, "host": {"a": 1}},
    {"type": "epoch", "t": 2.0, "epoch": HUGE, "metrics": {"train_loss": 0.5}},
    {"type": "epoch", "t": 3.0, "epoch": 1, "metrics": {"train_loss": HUGE, "test_loss": 10**400}},
    {"type": "checkpoint", "t": 4.0, "epoch": HUGE, "path": "checkpoints/x.pt", "kind": "best"},
    {"type": "evaluation", "t": 5.0, "results": {"model_test_loss": 10**400, "n": [1]}},
    {"type": "heartbeat", "t": HUGE},
    {"type": "status", "t": 6.0, "status": "hacked"},
    {"type": "status", "t": 7.0, "status": "failed", "error": {"not": "text"}, "epoch": HUGE},
]


def _write_hostile(path: Path) -> None:
    with open(path / EVENTS_FILE, "w") as handle:
        for event in HOSTILE_LINES:
            handle.write(json.dumps(event) + "\n")
        handle.write('{"type": "epoch", "epoch": ' + "9" * 5000 + "}\n")  # past int parsing
        handle.write("[" * 100_000 + "\n")  # nesting past the JSON parser's recursion
        handle.write(json.dumps({"type": "epoch", "t": 8.0, "epoch": 2, "metrics": {"x": 1}}))
        handle.write("\n")


def _good_run(store: Store, name: str) -> None:
    row = store.create_run({}, name=name)
    with RunWriter(row.path) as writer:
        writer.start(total_epochs=2)
        writer.epoch(1, {"train_loss": 0.5, "test_loss": 0.25})
        writer.status("completed")


def test_hostile_events_spoil_only_their_own_fields(rhea_home: Path) -> None:
    store = Store(rhea_home)
    _good_run(store, "before")
    bad = store.create_run({}, name="bad")
    _write_hostile(bad.path)
    _good_run(store, "after")
    refresh(store)  # raised OverflowError (and poisoned every later command) before
    for name in ("before", "after"):
        good = store.get_run(name)
        assert good.status == "completed" and good.best_test_loss == 0.25
    run = store.get_run("bad")
    assert run.pid is None and run.total_epochs is None and run.host is None
    assert run.status == "failed" and run.error is None and run.fail_epoch is None
    assert run.last_epoch == 2  # the events that could be placed were
    assert run.best_train_loss == 1e30 and run.last_train_loss == 1e30
    series = store.metrics("bad")
    assert series["train_loss"] == [(1, 1e30)] and series["test_loss"] == [(1, math.inf)]
    assert series["x"] == [(2, 1.0)]
    assert run.evaluation == {"model_test_loss": math.inf}
    assert [c["epoch"] for c in run.checkpoints] == [None]
    assert run.heartbeat == 8.0
    assert [r.name for r in store.list_runs(sort="test_loss")] == ["before", "after", "bad"]
    # a rebuild reads the same files to the same rows
    with sqlite3.connect(store.path) as conn:
        before = conn.execute("SELECT * FROM metrics ORDER BY 1, 2, 3").fetchall()
    assert store.rebuild() == 3
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT * FROM metrics ORDER BY 1, 2, 3").fetchall() == before
    store.delete_run("bad")
    assert [r.name for r in store.list_runs()] == ["before", "after"]


def test_hostile_config_and_status_files_do_not_break_a_rebuild(rhea_home: Path) -> None:
    store = Store(rhea_home)
    _good_run(store, "good")
    odd = store.create_run({}, name="odd")
    config = json.loads((odd.path / "config.json").read_text())
    config["meta"].update(id=HUGE, created="yesterday", sweep=["x"], status="hacked")
    (odd.path / "config.json").write_text(json.dumps(config))
    (odd.path / "status.json").write_text(json.dumps({"status": 7, "t": HUGE, "error": [1]}))
    (rhea_home / "runs" / "notarun").mkdir()
    (rhea_home / "runs" / "notarun" / "config.json").write_text("[1, 2]")
    assert store.rebuild() == 2
    row = store.get_run("odd")
    assert row.status == "queued" and row.sweep is None and isinstance(row.created, float)
    assert row.id == store.get_run("good").id + 1
    refresh(store)
    assert store.get_run("good").status == "completed"


@pytest.mark.parametrize("name", ["run1\n", "ok\n", "a\nb", "ok\r", " ok", "ok "])
def test_names_with_line_ends_or_blanks_are_refused(rhea_home: Path, name: str) -> None:
    store = Store(rhea_home)
    with pytest.raises(RunError, match="not a valid run name"):
        store.create_run({}, name=name)
    with pytest.raises(RunError):
        store.create_sweep(name, {})
    assert list((rhea_home / "runs").iterdir()) == []


def test_a_deleted_run_directory_reads_as_missing(rhea_home: Path) -> None:
    store = Store(rhea_home)
    _good_run(store, "kept")
    _good_run(store, "gone")
    refresh(store)
    aside = rhea_home / "elsewhere"
    (rhea_home / "runs" / "gone").rename(aside)
    refresh(store)
    row = store.get_run("gone")
    assert row.status == "missing" and row.is_final
    assert "is gone (deleted outside Rhea); the run was completed" in (row.error or "")
    assert [r.name for r in store.list_runs(status="missing")] == ["gone"]
    assert [r.name for r in store.list_runs(status="completed")] == ["kept"]
    with pytest.raises(RunError, match="Unknown status"):
        store.set_status("gone", "missing")
    aside.rename(rhea_home / "runs" / "gone")  # restored: the recorded status is back
    assert store.get_run("gone").status == "completed"
    (rhea_home / "runs" / "gone").rename(aside)
    store.delete_run("gone")  # the record of a missing run can be removed
    assert [r.name for r in store.list_runs()] == ["kept"]


def test_the_store_needs_one_lock_only(rhea_home: Path) -> None:
    """Calls from two threads are serialised by the one lock, never interleaved."""
    import threading

    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        for epoch in range(1, 200):
            writer.epoch(epoch, {"train_loss": 1.0 / epoch})
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            for _ in range(20):
                refresh(store)
                store.list_runs()
                store.metrics(row.name)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(store.metrics(row.name)["train_loss"]) == 199
    assert time.time() > store.get_run(row.name).created

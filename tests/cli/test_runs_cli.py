"""ls, show, stop, resume, rm, db rebuild with real detached workers; kill -9 gives lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clitext import flat
from typer.testing import CliRunner

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import read_events
from rhea_engine.runs.store import RunRow, Store
from rhea_tui.cli import app

runner = CliRunner()
SLOW_RUN = [
    "--epochs",
    "5000",
    "--set",
    "epoch_num_samples=1024",
    "--set",
    "batch_size=512",
    "--width",
    "8",
    "--nhidden",
    "0",
    "--set",
    "output_every=5",
]


def poll(check: Callable[[], RunRow | None], what: str, timeout: float = 90.0) -> RunRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def reach(store: Store, handle: str, condition: Callable[[RunRow], bool], what: str) -> RunRow:
    def check() -> RunRow | None:
        refresh(store)
        row = store.get_run(handle)
        return row if condition(row) else None

    return poll(check, what)


@pytest.fixture
def home(rhea_home: Path, tiny_data: tuple[Path, Path]) -> Iterator[Path]:
    """A home whose runs use the tiny data; workers still alive at the end are killed."""
    yield rhea_home
    with sqlite3.connect(rhea_home / "runs.db") as conn:
        pids = [p for (p,) in conn.execute("SELECT pid FROM runs WHERE pid IS NOT NULL")]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _start(tiny_data: tuple[Path, Path], *extra: str) -> str:
    asymptotic, stable = tiny_data
    result = runner.invoke(
        app,
        [
            "run",
            *SLOW_RUN,
            "--data",
            str(asymptotic),
            "--stable-data",
            str(stable),
            "--detach",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_detach_stop_resume_kill_lost(home: Path, tiny_data: tuple[Path, Path]) -> None:
    handle = _start(tiny_data)
    assert handle == "run1"
    store = Store(home)
    reach(store, handle, lambda r: r.status == "running" and (r.last_epoch or 0) >= 6, "epochs")

    # a running run cannot be removed
    refused = runner.invoke(app, ["rm", handle, "--yes"])
    assert refused.exit_code == 2 and "stop it first" in flat(refused.output)

    stopped = runner.invoke(app, ["stop", handle])
    assert stopped.exit_code == 0, stopped.output
    assert "stopped" in stopped.output
    row = store.get_run(handle)
    assert row.status == "stopped" and row.checkpoints
    stopped_at = row.last_epoch
    assert stopped_at and stopped_at >= 6
    again = runner.invoke(app, ["stop", handle])
    assert again.exit_code == 2 and "not running" in flat(again.output)

    resumed = runner.invoke(app, ["resume", handle, "--detach"])
    assert resumed.exit_code == 0, resumed.output
    row = reach(
        store,
        handle,
        lambda r: r.status == "running" and (r.last_epoch or 0) > stopped_at + 2,
        "epochs after the resume",
    )
    starts = [e for e in read_events(row.path).events if e["type"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from_epoch"] is not None
    resumed_from = starts[1]["resumed_from_epoch"]
    assert 0 < resumed_from <= stopped_at
    epochs_after = [
        e["epoch"]
        for e in read_events(row.path).events
        if e["type"] == "epoch" and e["t"] > starts[1]["t"]
    ]
    assert epochs_after[0] == resumed_from + 1  # continues, not from scratch

    # kill -9: no final status is ever written; the front end settles it as lost at once
    os.kill(row.pid, signal.SIGKILL)
    row = reach(store, handle, lambda r: r.status == "lost", "lost")
    listed = json.loads(runner.invoke(app, ["ls", "--json"]).output)
    assert listed[0]["status"] == "lost" and "rhea resume" in listed[0]["error"]

    removed = runner.invoke(app, ["rm", handle, "--yes"])
    assert removed.exit_code == 0, removed.output
    assert not row.path.exists() and Store(home).list_runs() == []


def test_ls_show_rm_rebuild_and_errors(home: Path, tiny_data: tuple[Path, Path]) -> None:
    asymptotic, stable = tiny_data
    fast = [
        "--epochs",
        "2",
        "--set",
        "epoch_num_samples=1024",
        "--set",
        "batch_size=512",
        "--width",
        "8",
        "--nhidden",
        "0",
        "--data",
        str(asymptotic),
        "--stable-data",
        str(stable),
    ]
    # two runs that differ, so that a sort is seen to reorder them
    for name, lr in (("alpha", "1e-2"), ("beta", "1e-6")):
        result = runner.invoke(app, ["run", *fast, "--lr", lr, "--name", name])
        assert result.exit_code == 0, result.output

    table = runner.invoke(app, ["ls"])
    assert table.exit_code == 0 and "alpha" in table.output and "completed" in table.output
    for key in ("best_test_loss", "lr"):
        ascending = json.loads(runner.invoke(app, ["ls", "--json", "--sort", key]).output)
        descending = json.loads(
            runner.invoke(app, ["ls", "--json", "--sort", key, "--desc"]).output
        )
        column = "learning_rate" if key == "lr" else key
        values = [r[column] for r in ascending]
        assert values[0] < values[1], (key, values)  # they differ, in order
        assert [r["name"] for r in descending] == [r["name"] for r in reversed(ascending)]
    by_lr = json.loads(runner.invoke(app, ["ls", "--json", "--sort", "lr"]).output)
    assert [r["name"] for r in by_lr] == ["beta", "alpha"]  # not the order they were made
    assert json.loads(runner.invoke(app, ["ls", "--json", "--status", "running"]).output) == []
    for args, message in [
        (["show", "nope"], "There is no run 'nope'"),
        (["show", "x'; DROP TABLE runs; --"], "There is no run"),
        (["ls", "--status", "happy"], "Unknown status 'happy'"),
        (["ls", "--sort", "bogus"], "Cannot sort by 'bogus'"),
        (["ls", "--sweep", "nope"], "There is no sweep 'nope'"),
        (["stop", "nope"], "Known runs: alpha, beta"),
        (["resume", "alpha"], "completed all its epochs"),
        (["rm", "alpha"], "add --yes"),
        (["ls", "--home", str(home / "missing")], "does not exist"),
        (["compare-nothing"], "No such command"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in flat(result.output), (args, result.output)
        assert "Traceback" not in result.output

    before = json.loads(runner.invoke(app, ["show", "beta", "--json"]).output)
    (home / "runs.db").unlink()
    for suffix in ("-wal", "-shm"):
        (home / f"runs.db{suffix}").unlink(missing_ok=True)
    rebuilt = runner.invoke(app, ["db", "rebuild"])
    assert rebuilt.exit_code == 0 and "from 2 run directories" in flat(rebuilt.output)
    after = json.loads(runner.invoke(app, ["show", "beta", "--json"]).output)
    assert after == before

    # a damaged runs.db: commands say how to recover, and rebuild moves it aside
    Store(home).close()
    for suffix in ("-wal", "-shm"):
        (home / f"runs.db{suffix}").unlink(missing_ok=True)
    (home / "runs.db").write_bytes(b"this is not a database" * 100)
    damaged = runner.invoke(app, ["ls"])
    assert damaged.exit_code == 2 and "rhea db rebuild" in flat(damaged.output)
    rebuilt = runner.invoke(app, ["db", "rebuild"])
    assert rebuilt.exit_code == 0 and "moved it aside" in flat(rebuilt.output)
    assert json.loads(runner.invoke(app, ["show", "beta", "--json"]).output) == before

    removed = runner.invoke(app, ["rm", "alpha", "--yes"])
    assert removed.exit_code == 0
    assert [r["name"] for r in json.loads(runner.invoke(app, ["ls", "--json"]).output)] == ["beta"]
    assert not (home / "runs" / "alpha").exists()

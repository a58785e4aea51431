"""Careless and hostile cases of ls, show, stop, resume, rm, db rebuild (real homes, real workers)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clitext import answer_prompt, flat
from typer.testing import CliRunner

from rhea_engine import config as config_mod
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import EVENTS_FILE, RunWriter, read_events
from rhea_engine.runs.store import Store
from rhea_tui.cli import app

runner = CliRunner()
HUGE = 10**30
# a worker stand-in that runs until SIGTERM, then ends as stopped, as the worker does
STOPPABLE = (
    "import signal, sys, time\n"
    "from rhea_engine.runs.rundir import RunWriter\n"
    "w = RunWriter(sys.argv[1]); w.start(total_epochs=3)\n"
    "stop = []\n"
    "signal.signal(signal.SIGTERM, lambda *a: stop.append(1))\n"
    "w.log('ready')\n"
    "while not stop: time.sleep(0.05)\n"
    "w.status('stopped'); w.close()\n"
)


def rhea(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, flat(result.output)


def completed_run(store: Store, name: str, sweep: str | None = None, loss: float = 0.5) -> Path:
    row = store.create_run({"epochs": 2}, name=name, sweep=sweep)
    assert row.path is not None
    with RunWriter(row.path) as writer:
        writer.start(total_epochs=2)
        for epoch in (1, 2):
            writer.epoch(epoch, {"train_loss": loss / epoch, "test_loss": loss / epoch})
        writer.checkpoint(2, row.path / "checkpoints" / "epoch_00002.pt", "final")
        writer.status("completed")
    return row.path


def test_one_bad_run_never_poisons_the_home(rhea_home: Path) -> None:
    store = Store(rhea_home)
    completed_run(store, "good")
    live = store.create_run({}, name="live")
    worker = subprocess.Popen([sys.executable, "-c", STOPPABLE, str(live.path)])
    bad = store.create_run({}, name="bad")
    with open(bad.path / EVENTS_FILE, "w") as handle:
        handle.write(json.dumps({"type": "start", "t": time.time(), "total_epochs": HUGE}) + "\n")
        handle.write(json.dumps({"type": "epoch", "epoch": HUGE, "metrics": {"train_loss": 1}}))
        handle.write("\n" + json.dumps({"type": "epoch", "epoch": 1, "metrics": {"x": HUGE}}))
        handle.write("\n" + json.dumps({"type": "status", "status": "failed", "epoch": HUGE}))
        handle.write("\n")
    try:
        deadline = time.monotonic() + 60
        while not any(e["type"] == "log" for e in read_events(live.path).events):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        code, out = rhea("ls")
        assert code == 0 and all(name in out for name in ("good", "live", "bad")), out
        for name in ("good", "bad", "live"):
            code, out = rhea("show", name)
            assert code == 0 and f"run {name}" in out, out
        code, out = rhea("db", "rebuild")
        assert code == 0 and "from 3 run directories" in out, out
        code, out = rhea("stop", "live")
        assert code == 0 and "live: stopped" in out, out
        code, out = rhea("rm", "bad", "--yes")
        assert code == 0 and "Deleted bad." in out, out
        assert [r["name"] for r in json.loads(runner.invoke(app, ["ls", "--json"]).output)] == [
            "good",
            "live",
        ]
    finally:
        worker.kill()
        worker.wait()


def test_a_deleted_run_directory_shows_as_missing(rhea_home: Path) -> None:
    store = Store(rhea_home)
    completed_run(store, "kept")
    gone = completed_run(store, "gone")
    shutil.rmtree(gone)
    code, out = rhea("ls")
    assert code == 0 and "gone missing" in out and "kept completed" in out, out
    listed = {
        r["name"]: r["status"] for r in json.loads(runner.invoke(app, ["ls", "--json"]).output)
    }
    assert listed == {"kept": "completed", "gone": "missing"}
    code, out = rhea("ls", "--status", "missing")
    assert code == 0 and "gone" in out and "kept" not in out
    code, out = rhea("show", "gone")
    unspaced = out.replace(" ", "")  # (long paths wrap)
    assert code == 0 and f"Therundirectory{gone}isgone(deletedoutsideRhea)" in unspaced, out
    code, out = rhea("export", "gone")
    assert code == 2 and f"Therundirectory{gone}isgone" in out.replace(" ", ""), out
    assert "wait" not in out
    code, out = rhea("resume", "gone")
    assert code == 2 and "is gone" in out, out
    code, out = rhea("rm", "gone", "--yes")
    assert code == 0 and [r.name for r in Store(rhea_home).list_runs()] == ["kept"]


def test_rm_of_a_sweep_frees_its_name(rhea_home: Path) -> None:
    store = Store(rhea_home)
    store.create_sweep("scan", {"learning_rate": [1e-3, 1e-4]})
    for index in range(2):
        completed_run(store, f"scan-{index}", sweep="scan")
    completed_run(store, "other")
    code, out = rhea("rm", "sweep:scan", "--yes")
    assert code == 0 and "Deleted sweep scan; the name is free again." in out, out
    assert not (rhea_home / "sweeps" / "scan.json").exists()
    assert Store(rhea_home).sweeps() == [] and [r.name for r in store.list_runs()] == ["other"]
    code, out = rhea("ls", "--sweep", "scan")
    assert code == 2 and "There is no sweep 'scan'" in out
    store.create_sweep("scan", {})  # the name is free again


def test_rm_asks_in_the_singular_for_one_run(rhea_home: Path) -> None:
    store = Store(rhea_home)
    for name in ("one", "two"):
        completed_run(store, name)
    shown = answer_prompt(rhea_home, ["rm", "one"], b"n\n")
    assert "Delete one and its directory?" in shown, shown
    shown = answer_prompt(rhea_home, ["rm", "one", "two"], b"n\n")
    assert "Delete one, two and their directories?" in shown, shown
    assert [r.name for r in store.list_runs()] == ["one", "two"]


@pytest.fixture
def tiny_config(tiny_data: tuple[Path, Path]) -> dict[str, object]:
    asymptotic, stable = tiny_data
    cfg = config_mod.resolve(
        sets=[
            "epochs=2",
            "epoch_num_samples=1024",
            "batch_size=512",
            "output_every=1",
            f"database_list={asymptotic}",
            f"stable_database_list={stable}",
        ],
        shortcuts={"width": 8, "nhidden": 0},
    )
    return cfg.to_dict()


def test_resume_refuses_unreadable_checkpoints_until_from_scratch(
    rhea_home: Path, tiny_config: dict[str, object]
) -> None:
    store = Store(rhea_home)
    row = store.create_run(tiny_config, name="broken")
    assert row.path is not None
    with RunWriter(row.path) as writer:  # an earlier history of 5 epochs, then stopped
        writer.start(total_epochs=2)
        for epoch in range(1, 6):
            writer.epoch(epoch, {"train_loss": 9.0, "test_loss": 9.0})
        for name in ("epoch_00005.pt", "best.pt", "last.pt"):
            (row.path / "checkpoints" / name).write_bytes(b"damaged")
            writer.checkpoint(5, row.path / "checkpoints" / name, "periodic")
        writer.status("stopped")
    events_before = (row.path / EVENTS_FILE).read_bytes()

    code, out = rhea("resume", "broken")
    assert code == 2, out
    for name in ("epoch_00005.pt", "best.pt", "last.pt"):  # (paths wrap: compare unspaced)
        assert str(row.path / "checkpoints" / name) in out.replace(" ", ""), out
    assert "rhea resume broken --from-scratch" in out and "Nothing was started" in out
    assert (row.path / EVENTS_FILE).read_bytes() == events_before  # no worker ran
    assert Store(rhea_home).get_run("broken").status == "stopped"

    code, out = rhea("resume", "broken", "--from-scratch")
    assert code == 0, out
    shown = json.loads(runner.invoke(app, ["show", "broken", "--json"]).output)
    assert shown["status"] == "completed" and shown["last_epoch"] == 2
    assert shown["checkpoints"] and {c["epoch"] for c in shown["checkpoints"]} <= {1, 2}
    assert all((row.path / c["path"]).is_file() for c in shown["checkpoints"])
    fresh = Store(rhea_home)
    series = fresh.metrics("broken", ["train_loss"])["train_loss"]
    assert [e for e, _ in series] == [1, 2] and all(v != 9.0 for _, v in series)
    discarded = sorted(p.name for p in (row.path / "checkpoints").glob("discarded-*/*"))
    assert discarded == ["best.pt", "epoch_00005.pt", "last.pt"]

    listed = runner.invoke(app, ["ls", "--json"]).output
    code, out = rhea("db", "rebuild")
    assert code == 0, out
    rebuilt = json.loads(runner.invoke(app, ["show", "broken", "--json"]).output)
    assert rebuilt == shown and runner.invoke(app, ["ls", "--json"]).output == listed
    assert Store(rhea_home).metrics("broken", ["train_loss"])["train_loss"] == series


def test_resume_without_any_checkpoint_points_to_from_scratch(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({}, name="early")
    with RunWriter(row.path) as writer:
        writer.start(total_epochs=9)
        writer.status("stopped")
    code, out = rhea("resume", "early")
    assert code == 2 and "has no checkpoint" in out and "--from-scratch" in out, out


def test_a_real_worker_sigkilled_while_it_starts_is_lost(
    rhea_home: Path, tiny_data: tuple[Path, Path]
) -> None:
    asymptotic, stable = tiny_data
    result = runner.invoke(
        app,
        ["run", "--epochs", "50", "--data", str(asymptotic), "--stable-data", str(stable)]
        + ["--detach", "--name", "killed"],
    )
    assert result.exit_code == 0, result.output
    store = Store(rhea_home)
    pid = store.get_run("killed").pid
    assert pid
    os.kill(pid, signal.SIGKILL)  # while it still imports torch and loads data
    deadline = time.monotonic() + 30
    while True:
        refresh(store, ["killed"])
        row = store.get_run("killed")
        if row.status != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row.status == "lost", (row.status, row.error)
    assert f"pid {pid} on" in (row.error or "") and "last sign of life" in (row.error or "")
    assert row.last_epoch is None and "--from-scratch" in (row.error or "")

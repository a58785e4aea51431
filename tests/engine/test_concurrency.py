"""Many writers and several front ends at once: nothing lost, nothing doubled, never locked."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store

N_METRICS = 40

WRITER = """
import sys, time
from rhea_engine.runs.rundir import RunWriter
path, epochs, n_metrics = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with RunWriter(path) as writer:
    writer.start(total_epochs=epochs, device="cpu")
    for epoch in range(1, epochs + 1):
        writer.epoch(epoch, {f"m{i:02d}": epoch + i / 100 for i in range(n_metrics)})
        time.sleep(0.005)  # the pace of a fast training loop, so front ends overlap writers
        if epoch % 10 == 0:
            writer.heartbeat(epoch)
            writer.checkpoint(epoch, f"{path}/checkpoints/epoch_{epoch:05d}.pt", "periodic")
    writer.evaluation({"model_test_loss": 0.5})
    writer.status("completed")
"""

FRONT_END = """
import json, sys, time, traceback
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.store import Store
home, expected = sys.argv[1], int(sys.argv[2])
errors, passes = [], 0
store = Store(home)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        refresh(store)
        rows = store.list_runs()
        for row in rows[:2]:
            store.metrics(row.name, ["m00"])
        passes += 1
        if len(rows) == expected and all(r.status == "completed" for r in rows):
            break
    except Exception:
        errors.append(traceback.format_exc())
print(json.dumps({"passes": passes, "errors": errors}))
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _epochs_in_prefix(run_path: Path, offset: int) -> set[int]:
    """The epochs whose event lines lie in the first `offset` bytes of events.jsonl."""
    data = (run_path / "events.jsonl").read_bytes()[:offset]
    assert not data or data.endswith(b"\n")  # an offset always ends on a whole line
    return {json.loads(line)["epoch"] for line in data.splitlines() if b'"type":"epoch"' in line}


def test_eight_writers_two_front_ends(rhea_home: Path, tiny_data: tuple[Path, Path]) -> None:
    """Eight event writers and one real training run, two front ends ingesting throughout."""
    from rhea_engine.config import resolve
    from rhea_engine.runs import launch

    store = Store(rhea_home)
    epochs = 150
    rows = [store.create_run({"heartbeat_seconds": 1.0}) for _ in range(8)]
    real = resolve(
        sets=["epochs=3", "epoch_num_samples=1024", "batch_size=512", "width_shared=8"],
        base={"database_list": [str(tiny_data[0])], "stable_database_list": [str(tiny_data[1])]},
    )
    trained = store.create_run(real.to_dict(), name="trained")
    front_ends = [_spawn(FRONT_END, str(rhea_home), "9") for _ in range(2)]
    worker = launch.start_worker(store, trained.name)
    writers = [_spawn(WRITER, str(row.path), str(epochs), str(N_METRICS)) for row in rows]
    for writer in writers:
        output, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0, output
    assert worker.wait(timeout=150) == 0, (trained.path / "stdout.log").read_text()
    reports = []
    for front_end in front_ends:
        output, _ = front_end.communicate(timeout=150)
        assert front_end.returncode == 0, output
        reports.append(json.loads(output.strip().splitlines()[-1]))
    for report in reports:
        assert report["errors"] == [], report["errors"][:1]
        assert report["passes"] >= 1
    refresh(store)
    done = store.get_run("trained")
    assert done.status == "completed" and done.last_epoch == 3 and done.evaluation
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        trained_rows = conn.execute(
            "SELECT COUNT(*) FROM metrics WHERE run = ?", (done.id,)
        ).fetchone()[0]
        assert trained_rows == sum(len(v) for v in store.metrics("trained").values()) > 0
        total = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        assert total == 8 * epochs * N_METRICS + trained_rows
        checkpoints = conn.execute(
            "SELECT COUNT(*) FROM checkpoints WHERE run != ?", (done.id,)
        ).fetchone()[0]
        assert checkpoints == 8 * epochs // 10
        per_run = conn.execute(
            "SELECT run, COUNT(*), MIN(epoch), MAX(epoch) FROM metrics WHERE run != ? GROUP BY run",
            (done.id,),
        ).fetchall()
    assert sorted(per_run) == [(row.id, epochs * N_METRICS, 1, epochs) for row in rows]
    for row in store.list_runs()[:8]:
        assert row.status == "completed" and row.last_epoch == epochs
        assert row.path is not None
        assert store.metrics(row.name, ["m07"])["m07"][-1] == (epochs, epochs + 0.07)


def test_front_end_killed_mid_ingestion_loses_and_doubles_nothing(rhea_home: Path) -> None:
    store = Store(rhea_home)
    epochs = 300
    rows = [store.create_run({}) for _ in range(12)]
    for row in rows:
        with RunWriter(row.path) as writer:
            writer.start(total_epochs=epochs)
            for epoch in range(1, epochs + 1):
                writer.epoch(epoch, {f"m{i:02d}": float(epoch * i) for i in range(N_METRICS)})
            writer.status("completed")
    store.close()
    killed_mid_ingestion = []
    for attempt in range(3):
        victim = _spawn(FRONT_END, str(rhea_home), "12")
        watcher = sqlite3.connect(rhea_home / "runs.db", timeout=30)
        deadline = time.monotonic() + 60
        # kill it once it has committed some runs and is busy with the next ones
        while time.monotonic() < deadline:
            done = watcher.execute("SELECT COUNT(*) FROM runs WHERE events_offset > 0").fetchone()[
                0
            ]
            if done > 2 * attempt + 1 or victim.poll() is not None:
                break
            time.sleep(0.01)
        done = watcher.execute("SELECT COUNT(*) FROM runs WHERE events_offset > 0").fetchone()[0]
        killed_mid_ingestion.append(victim.poll() is None and done < len(rows))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        # every run holds exactly the epochs its recorded offset covers: no loss, no doubles
        for run_id, name, offset in watcher.execute("SELECT id, name, events_offset FROM runs"):
            expected = _epochs_in_prefix(rhea_home / "runs" / name, offset)
            got = watcher.execute(
                "SELECT COUNT(*), COUNT(DISTINCT epoch) FROM metrics WHERE run = ?", (run_id,)
            ).fetchone()
            assert got == (len(expected) * N_METRICS, len(expected)), (attempt, name, offset)
        watcher.close()
    assert any(killed_mid_ingestion)
    store = Store(rhea_home)
    refresh(store)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 12 * epochs * N_METRICS
    assert all(r.status == "completed" and r.last_epoch == epochs for r in store.list_runs())


DEFAULT_DATA = """
import json, sys
from pathlib import Path
from rhea_engine.runs.defaults import default_data
asymptotic, stable, made = default_data(Path(sys.argv[1]), n=4096, seed=5)
print(json.dumps({"asymptotic": asymptotic, "stable": stable, "made": made}))
"""


def test_two_first_runs_generate_the_default_data_once(rhea_home: Path) -> None:
    first, second = (_spawn(DEFAULT_DATA, str(rhea_home)) for _ in range(2))
    reports = []
    for process in (first, second):
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        reports.append(json.loads(output.strip().splitlines()[-1]))
    assert sorted(r["made"] for r in reports) == [False, True]
    assert reports[0]["asymptotic"] == reports[1]["asymptotic"]
    import h5py

    for name in ("asymptotic.h5", "stable.h5"):
        with h5py.File(rhea_home / "data" / name, "r") as handle:
            assert len(handle.keys()) >= 2
    assert not list((rhea_home / "data").glob(".partial-*"))

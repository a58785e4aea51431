"""The SQLite run store: ingestion by offset, summaries, status rules, handles, rebuild."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

import pytest

from rhea_engine.errors import RunError, UnknownRunError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import EVENTS_FILE, RunWriter
from rhea_engine.runs.store import Store


def _epoch_metrics(epoch: int) -> dict[str, float]:
    return {
        "train_loss": 1.0 / epoch,
        "test_loss": 1.5 / epoch + (0.5 if epoch == 3 else 0.0),
        "ELN_violation": 1e-7 * epoch,
        "learning_rate": 1e-3 / epoch,
        "stability_test_loss": 0.1,
    }


def _write_run(writer: RunWriter, epochs: int, final: str | None = "completed") -> None:
    writer.start(
        device="cpu",
        total_epochs=epochs,
        git_commit="abc",
        git_dirty=True,
        data=[{"path": "/d/a.h5", "sha256": "ff", "kind": "asymptotic"}],
    )
    for epoch in range(1, epochs + 1):
        writer.epoch(epoch, _epoch_metrics(epoch))
        writer.heartbeat(epoch)
    writer.checkpoint(epochs, writer.path / "checkpoints" / "final.pt", "final")
    writer.evaluation({"model_test_loss": 0.2, "box3d_test_loss": 0.4, "identity_test_loss": 0.9})
    if final:
        writer.status(final)


def _table(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_ingest_summary_and_idempotence(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({"epochs": 4})
    assert row.name == "run1" and row.status == "queued" and (row.path / "config.json").is_file()
    with RunWriter(row.path) as writer:
        _write_run(writer, 4)
    applied = refresh(store)
    assert applied == 1 + 4 * 2 + 3
    assert refresh(store) == 0  # nothing new: nothing applied
    run = store.get_run("run1")
    assert run.status == "completed" and run.last_epoch == 4 and run.total_epochs == 4
    assert run.last_train_loss == pytest.approx(0.25)
    assert run.best_test_loss == pytest.approx(1.5 / 4)
    assert run.last_test_loss == pytest.approx(1.5 / 4)
    assert run.max_eln_violation == pytest.approx(4e-7)
    assert run.learning_rate == pytest.approx(2.5e-4)
    assert run.git_commit == "abc" and run.git_dirty is True and run.device == "cpu"
    assert run.data == [{"path": "/d/a.h5", "sha256": "ff", "kind": "asymptotic"}]
    assert run.evaluation["box3d_test_loss"] == pytest.approx(0.4)
    assert [c["kind"] for c in run.checkpoints] == ["final"]
    series = store.metrics("run1", ["train_loss"])
    assert series == {"train_loss": [(e, pytest.approx(1.0 / e)) for e in range(1, 5)]}
    assert "stability_test_loss" in store.metric_names("run1")
    assert len(store.metrics("run1", since_epoch=3)["test_loss"]) == 2

    # re-ingesting from offset 0 (a lost offset) duplicates nothing
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET events_offset = 0")
    refresh(store)
    assert _table(store.path, "SELECT COUNT(*) FROM metrics")[0][0] == 4 * 5
    assert _table(store.path, "SELECT COUNT(*) FROM checkpoints")[0][0] == 1


def test_torn_last_line_waits_for_the_rest(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.start(total_epochs=2)
        writer.epoch(1, {"train_loss": 0.5})
    events = row.path / EVENTS_FILE
    size_whole = events.stat().st_size
    line = (
        json.dumps({"type": "epoch", "t": time.time(), "epoch": 2, "metrics": {"train_loss": 0.25}})
        + "\n"
    )
    with open(events, "ab") as handle:
        handle.write(line[:17].encode())
    assert refresh(store) == 2
    offset = _table(store.path, "SELECT events_offset FROM runs")[0][0]
    assert offset == size_whole  # the torn part is not consumed
    assert store.get_run("run1").last_epoch == 1
    with open(events, "ab") as handle:
        handle.write(line[17:].encode())
    assert refresh(store) == 1
    assert store.get_run("run1").last_epoch == 2
    assert _table(store.path, "SELECT events_offset FROM runs")[0][0] == events.stat().st_size


def test_non_finite_metric_values(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.start()
        writer.epoch(1, {"train_loss": 0.5, "test_loss": 0.7})
        writer.epoch(2, {"train_loss": float("nan"), "test_loss": float("inf")})
        writer.status("diverged", error="loss went non-finite", epoch=2, task="ndens")
    refresh(store)
    run = store.get_run(row.name)
    assert run.status == "diverged" and run.fail_epoch == 2 and run.fail_task == "ndens"
    assert run.best_train_loss == 0.5 and run.last_train_loss is None
    series = store.metrics(row.name)
    assert math.isnan(series["train_loss"][1][1]) and series["test_loss"][1][1] == math.inf


def test_final_status_not_overwritten_by_heartbeat(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.start()
        writer.status("stopped")
        writer.heartbeat(3)
        writer.epoch(4, {"train_loss": 0.1})
    refresh(store)
    assert store.get_run(row.name).status == "stopped"
    with RunWriter(row.path) as writer:  # a resume starts it again
        writer.start(resumed_from_epoch=4)
    refresh(store)
    assert store.get_run(row.name).status == "running"


def test_failed_keeps_traceback(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.start()
        writer.status("failed", error="boom", traceback="Traceback ...\nValueError: boom")
    refresh(store)
    run = store.get_run(row.name)
    assert run.status == "failed" and run.error == "boom" and "ValueError" in (run.traceback or "")
    assert run.ended is not None


def test_front_end_status_beats_older_events(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({}, sweep="s1")
    with RunWriter(row.path) as writer:
        writer.start()
    refresh(store)
    with RunWriter(row.path) as writer:
        writer.emit("status", status="stopped")
        # the sweep prunes it; the stopped event was written earlier but read later
    store.set_status(row.name, "pruned")
    with open(row.path / EVENTS_FILE, "rb") as handle:
        lines = handle.read().splitlines()
    last = json.loads(lines[-1])
    last["t"] = time.time() - 5
    (row.path / EVENTS_FILE).write_bytes(
        b"\n".join(lines[:-1] + [json.dumps(last).encode()]) + b"\n"
    )
    refresh(store)
    assert store.get_run(row.name).status == "pruned"
    store.rebuild()
    assert store.get_run(row.name).status == "pruned"


def test_handles_names_and_sweeps(rhea_home: Path) -> None:
    store = Store(rhea_home)
    assert store.create_run({}).name == "run1"
    assert store.create_run({}, name="run3").name == "run3"
    # the next default is based on the largest id, skipping taken names
    assert store.create_run({}).name == "run4"
    with pytest.raises(RunError, match="already exists"):
        store.create_run({}, name="run3")
    store.create_sweep("lr-scan", {"learning_rate": [1e-3, 1e-4]})
    a = store.create_run({}, sweep="lr-scan")
    b = store.create_run({}, sweep="lr-scan")
    rows = store.resolve_handles(["run1", "sweep:lr-scan", a.name, "run1"])
    assert [r.name for r in rows] == ["run1", a.name, b.name]
    assert store.get_run(str(a.id)).name == a.name  # numeric id works too
    with pytest.raises(UnknownRunError, match="run1, run3, run4"):
        store.get_run("run99")
    with pytest.raises(UnknownRunError, match="lr-scan"):
        store.resolve_handles(["sweep:nope"])
    sweeps = store.sweeps()
    assert sweeps[0]["name"] == "lr-scan" and sweeps[0]["runs"] == 2
    assert sweeps[0]["spec"] == {"learning_rate": [1e-3, 1e-4]}


def test_default_names_are_the_next_free_run_number(rhea_home: Path) -> None:
    """Default handles follow the runN already in use, not the database ids."""
    store = Store(rhea_home)
    assert store.create_run({}).name == "run1"
    for name in ("alpha", "beta", "gamma"):
        store.create_run({}, name=name)
    second = store.create_run({})
    assert (second.name, second.id) == ("run2", 5)
    (rhea_home / "runs" / "run3").mkdir()  # a directory not (yet) in runs.db is skipped
    assert store.create_run({}).name == "run4"
    store.delete_run("run4")
    assert store.create_run({}).name == "run4"


def test_delete_sweep_frees_its_name(rhea_home: Path) -> None:
    store = Store(rhea_home)
    store.create_sweep("scan", {"width": [8]})
    row = store.create_run({}, sweep="scan")
    with pytest.raises(RunError, match="still has runs"):
        store.delete_sweep("scan")
    store.delete_run(row.name)
    store.delete_sweep("scan")
    assert store.sweeps() == [] and not (rhea_home / "sweeps" / "scan.json").exists()
    store.create_sweep("scan", {})
    store.rebuild()
    assert [s["name"] for s in store.sweeps()] == ["scan"]


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "..", ".hidden", "x'; DROP TABLE runs; --", "", "a" * 65, "/abs"]
)
def test_hostile_names_are_rejected(rhea_home: Path, name: str) -> None:
    store = Store(rhea_home)
    with pytest.raises(RunError):
        store.create_run({}, name=name)
    assert _table(store.path, "SELECT COUNT(*) FROM runs")[0][0] == 0
    assert sorted(p.name for p in (rhea_home / "runs").iterdir()) == []
    assert not (rhea_home.parent / "evil").exists()


def test_hostile_lookups_are_parameters(rhea_home: Path) -> None:
    store = Store(rhea_home)
    store.create_run({}, name="ok")
    for handle in ["x' OR '1'='1", "ok'; DELETE FROM runs; --", 'ok" OR 1=1 --']:
        with pytest.raises(UnknownRunError):
            store.get_run(handle)
        with pytest.raises(UnknownRunError):
            store.metrics(handle)
        with pytest.raises(UnknownRunError):
            store.resolve_handles([f"sweep:{handle}"])
    with pytest.raises(RunError):
        store.list_runs(sort="id; DROP TABLE runs")
    with pytest.raises(RunError):
        store.list_runs(status="running' OR 1=1 --")
    assert [r.name for r in store.list_runs()] == ["ok"]


def test_list_filters_and_sorting(rhea_home: Path) -> None:
    store = Store(rhea_home)
    for index, loss in enumerate([0.3, 0.1, 0.2]):
        row = store.create_run({}, sweep="s" if index else None)
        with RunWriter(row.path) as writer:
            writer.start()
            writer.epoch(1, {"test_loss": loss})
            if index == 2:
                writer.status("completed")
    store.create_run({})  # no metrics yet: sorts last
    refresh(store)
    assert [r.name for r in store.list_runs(sort="test_loss")] == ["run2", "run3", "run1", "run4"]
    assert [r.name for r in store.list_runs(sort="test_loss", descending=True)][:3] == [
        "run1",
        "run3",
        "run2",
    ]
    assert [r.name for r in store.list_runs(sweep="s")] == ["run2", "run3"]
    assert [r.name for r in store.list_runs(status="completed")] == ["run3"]


def test_rebuild_equals_original(rhea_home: Path) -> None:
    store = Store(rhea_home)
    store.create_sweep("grid", {"width": [8, 16]})
    for index in range(3):
        row = store.create_run({"width_shared": 8 + index}, sweep="grid" if index else None)
        with RunWriter(row.path) as writer:
            _write_run(writer, 3 + index, final=None if index == 2 else "completed")
    store.create_run({}, name="named", status="queued")
    refresh(store)
    tables = ["runs", "metrics", "checkpoints", "evaluations", "sweeps"]
    columns = (
        "id, name, sweep, status, created, started, ended, heartbeat, pid, host, device, "
        "git_commit, git_dirty, data, config, error, total_epochs, last_epoch, "
        "last_train_loss, best_test_loss, max_eln_violation, learning_rate, events_offset"
    )
    before = {t: _table(store.path, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables[1:]}
    runs_before = _table(store.path, f"SELECT {columns} FROM runs ORDER BY id")
    store.close()
    store.path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(store.path) + suffix).unlink(missing_ok=True)
    fresh = Store(rhea_home)  # a missing runs.db is rebuilt on opening
    assert _table(fresh.path, f"SELECT {columns} FROM runs ORDER BY id") == runs_before
    assert fresh.rebuild() == 4
    assert _table(fresh.path, f"SELECT {columns} FROM runs ORDER BY id") == runs_before
    for table in tables[1:]:
        assert _table(fresh.path, f"SELECT * FROM {table} ORDER BY 1, 2") == before[table], table
    # rebuilding an up-to-date database changes nothing either
    fresh.rebuild()
    assert _table(fresh.path, f"SELECT {columns} FROM runs ORDER BY id") == runs_before


def test_delete_run_removes_rows_and_directory(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        _write_run(writer, 2)
    refresh(store)
    keep = store.create_run({})
    store.delete_run(row.name)
    assert not row.path.exists()
    assert [r.name for r in store.list_runs()] == [keep.name]
    assert _table(store.path, "SELECT COUNT(*) FROM metrics")[0][0] == 0
    with pytest.raises(UnknownRunError):
        store.get_run(row.name)


def test_delete_refuses_a_live_run(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.start()  # pid = this test process: alive
    refresh(store)
    with pytest.raises(RunError, match="stop it first"):
        store.delete_run(row.name)
    assert row.path.exists()


def test_data_version_changes_only_on_change(rhea_home: Path) -> None:
    store = Store(rhea_home)
    other = Store(rhea_home)
    row = store.create_run({})
    first = store.data_version()
    refresh(store)
    assert store.data_version() == first  # nothing to ingest: no change
    seen = other.data_version()
    with RunWriter(row.path) as writer:
        writer.start()
    refresh(store)
    assert store.data_version() != first
    assert other.data_version() != seen  # another connection sees the commit


def test_torn_line_alone_changes_nothing(rhea_home: Path) -> None:
    """A worker killed mid-write leaves a torn line; polls must not rewrite or redraw."""
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.epoch(1, {"train_loss": 0.5})
    refresh(store)
    with open(row.path / EVENTS_FILE, "ab") as handle:
        handle.write(b'{"type":"epoch","t":1,"epo')
    version = store.data_version()
    for _ in range(3):
        assert refresh(store) == 0
    assert store.data_version() == version


def test_replaced_events_file_is_read_again(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        for epoch in range(1, 6):
            writer.epoch(epoch, {"train_loss": 1.0 / epoch, "padding_metric_with_a_long_name": 0.0})
    refresh(store)
    (row.path / EVENTS_FILE).unlink()
    with RunWriter(row.path) as writer:
        writer.epoch(1, {"train_loss": 9.0})
    refresh(store)
    assert store.metrics(row.name, ["train_loss"])["train_loss"][0] == (1, 9.0)


def test_store_is_usable_from_a_worker_thread(rhea_home: Path) -> None:
    """The TUI creates the store on its main thread and polls it from a worker thread."""
    import threading

    store = Store(rhea_home)
    row = store.create_run({})
    with RunWriter(row.path) as writer:
        writer.start()
        writer.epoch(1, {"train_loss": 0.5})
    results: list[object] = []
    thread = threading.Thread(
        target=lambda: results.append((refresh(store), store.metrics(row.name)))
    )
    thread.start()
    thread.join(timeout=30)
    assert results == [(2, {"train_loss": [(1, 0.5)]})]

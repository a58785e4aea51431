""" "max ELN" is one figure: the largest test ELN violation over all epochs (train as a fallback),
the same after ingest, `rhea db rebuild`, and the migration of a home made before it."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from rhea_engine.runs import schema
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store

TEST_ELN = [2e-4, 9e-4, 5e-4, math.nan, 1e-4]  # peaks at epoch 2; epoch 4 is not finite
TRAIN_ELN = [5e-3, 4e-3, 3e-3, 2e-3, 1e-3]


def write_run(store: Store, name: str, with_test: bool, epochs: int = 5) -> None:
    row = store.create_run({"epochs": epochs}, name=name, status="running")
    with RunWriter(row.path) as writer:
        writer.start(device="cpu", total_epochs=epochs, data=[], pid=1, host="elsewhere")
        for epoch in range(1, epochs + 1):
            metrics = {"train_loss": 1.0 / epoch, "ELN_violation": TRAIN_ELN[epoch - 1]}
            if with_test:
                metrics["ELN_violation_test"] = TEST_ELN[epoch - 1]
            metrics["epoch_seconds"] = 2.0 + epoch
            writer.epoch(epoch, metrics)
        writer.status("completed")


def summaries(path: Path) -> dict[str, tuple[float | None, str | None, float | None]]:
    with sqlite3.connect(path / "runs.db") as conn:
        rows = conn.execute(
            "SELECT name, max_eln_violation, max_eln_metric, epoch_seconds FROM runs"
        ).fetchall()
    return {name: (value, metric, seconds) for name, value, metric, seconds in rows}


def test_max_over_epochs_of_the_test_violation_with_a_train_fallback(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        write_run(store, "tested", with_test=True)
        write_run(store, "imported", with_test=False)
        refresh(store)
        tested, imported = store.get_run("tested"), store.get_run("imported")
    assert tested.max_eln_violation == pytest.approx(9e-4)  # not the last epoch's 1e-4
    assert tested.max_eln_metric == "ELN_violation_test"
    assert imported.max_eln_violation == pytest.approx(5e-3)
    assert imported.max_eln_metric == "ELN_violation"
    assert tested.epoch_seconds == pytest.approx(7.0)


def test_ingest_in_pieces_rebuild_and_migration_agree(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Store(home) as store:
        write_run(store, "tested", with_test=True)
        write_run(store, "imported", with_test=False)
        refresh(store)
        # one epoch at a time for a third run: the summary follows
        row = store.create_run({"epochs": 3}, name="live", status="running")
        with RunWriter(row.path) as writer:
            writer.start(device="cpu", total_epochs=3, data=[], pid=1, host="elsewhere")
            seen = []
            for epoch, value in enumerate([3e-4, 1e-4, 6e-4], start=1):
                writer.epoch(epoch, {"ELN_violation_test": value, "ELN_violation": 1.0})
                refresh(store)
                seen.append(store.get_run("live").max_eln_violation)
        assert seen == pytest.approx([3e-4, 3e-4, 6e-4])
        fresh = summaries(home)
        store.rebuild()
        assert summaries(home) == fresh
    # a home at migration 2 (tags): its stored maxima were the last epoch's train value
    old = tmp_path / "old"
    old.mkdir()
    with Store(old) as store:
        write_run(store, "tested", with_test=True)
        write_run(store, "imported", with_test=False)
        refresh(store)
    with sqlite3.connect(old / "runs.db") as conn:
        db = sqlite_utils.Database(conn)
        for column in ("max_eln_metric", "epoch_seconds", "gpu"):
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.execute("UPDATE runs SET max_eln_violation = 1e-3")  # what v1 stored
        conn.execute("DELETE FROM _migrations WHERE version > 2")
        assert "max_eln_metric" not in db.table("runs").columns_dict
    with Store(old) as store:  # opening migrates
        assert schema.applied_version(store._conn) == schema.VERSION
    migrated = summaries(old)
    assert migrated["tested"] == fresh["tested"] and migrated["imported"] == fresh["imported"]

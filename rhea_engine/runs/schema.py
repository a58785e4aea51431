"""The runs.db schema as numbered migrations applied through sqlite-utils.

Each migration is a function of a `sqlite_utils.Database`; the numbers applied so far are
kept in `_migrations`. They run inside the caller's write transaction, so two front ends
opening a new home at once cannot both apply one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlite_utils (and the numpy it pulls in) loads only to migrate
    import sqlite_utils

RUN_COLUMNS: dict[str, type] = {
    "id": int,
    "name": str,
    "sweep": str,
    "status": str,
    "created": float,
    "started": float,
    "ended": float,
    "heartbeat": float,
    "pid": int,
    "host": str,
    "slurm_job_id": str,
    "device": str,
    "git_commit": str,
    "git_dirty": int,
    "data": str,  # JSON list of {"path", "sha256", "kind"}
    "config": str,  # JSON of the resolved config
    "error": str,
    "traceback": str,
    "fail_epoch": int,
    "fail_task": str,
    "total_epochs": int,
    "last_epoch": int,
    "last_train_loss": float,
    "last_test_loss": float,
    "best_train_loss": float,
    "best_test_loss": float,
    "max_eln_violation": float,  # max over all epochs: see vocabulary.MAX_ELN_METRICS
    "max_eln_metric": str,  # the metric max_eln_violation is of (test, else train)
    "learning_rate": float,  # the scheduler's rate at the last epoch (the config has the set one)
    "epoch_seconds": float,  # wall time of the last epoch
    "gpu": str,  # JSON {"t", "devices": [{index, name, utilization, memory_used, memory_total}]}
    "status_set_at": float,  # when a front end last set the status (older events yield)
    "events_offset": int,  # bytes of events.jsonl already ingested
}


# columns that migration 3 (_summaries) added; the first migration creates the others
_SUMMARY_COLUMNS = ("max_eln_metric", "epoch_seconds", "gpu")


def _v1(db: sqlite_utils.Database) -> None:
    db.table("sweeps").create(
        {"name": str, "created": float, "spec": str}, pk="name", if_not_exists=True
    )
    db.table("runs").create(
        {k: v for k, v in RUN_COLUMNS.items() if k not in _SUMMARY_COLUMNS},
        pk="id",
        not_null={"name", "status", "created", "config", "events_offset"},
        defaults={"events_offset": 0, "config": "{}"},
        if_not_exists=True,
    )
    db.table("runs").create_index(["name"], unique=True, if_not_exists=True)
    db.table("runs").create_index(["sweep"], if_not_exists=True)
    db.table("runs").create_index(["status"], if_not_exists=True)
    # Clustered on (run, name, epoch): a per-run series is one contiguous range, and
    # re-ingesting an epoch replaces its rows instead of duplicating them.
    db.execute(
        "CREATE TABLE IF NOT EXISTS metrics (run INTEGER NOT NULL, name TEXT NOT NULL, "
        "epoch INTEGER NOT NULL, value REAL, PRIMARY KEY (run, name, epoch)) WITHOUT ROWID"
    )
    db.table("checkpoints").create(
        {"run": int, "path": str, "epoch": int, "kind": str, "t": float},
        pk=("run", "path"),
        if_not_exists=True,
    )
    db.table("evaluations").create(
        {"run": int, "name": str, "value": float}, pk=("run", "name"), if_not_exists=True
    )


def _tags(db: sqlite_utils.Database) -> None:
    """Tags of runs (`rhea tag`); each run directory keeps its own in tags.json."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS tags (run INTEGER NOT NULL, tag TEXT NOT NULL, "
        "PRIMARY KEY (run, tag)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag)")


def _summaries(db: sqlite_utils.Database) -> None:
    """Migration 3: max ELN over all epochs (it was the last epoch's train value), seconds per
    epoch and GPU figures; the stored series give the new summaries of existing runs."""
    from rhea_engine.runs.ingest import max_eln

    runs = db.table("runs")
    for column in _SUMMARY_COLUMNS:
        if column not in runs.columns_dict:
            runs.add_column(column, RUN_COLUMNS[column])
    for (run_id,) in db.execute("SELECT id FROM runs").fetchall():
        value, metric = max_eln(db.conn, run_id)
        seconds = db.execute(
            "SELECT value FROM metrics WHERE run = ? AND name = 'epoch_seconds' "
            "ORDER BY epoch DESC LIMIT 1",
            [run_id],
        ).fetchone()
        db.execute(
            "UPDATE runs SET max_eln_violation = ?, max_eln_metric = ?, epoch_seconds = ? "
            "WHERE id = ?",
            [value, metric, seconds[0] if seconds else None, run_id],
        )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _tags, _summaries]
VERSION = len(MIGRATIONS)


def applied_version(conn: sqlite3.Connection) -> int:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if not found:
        return 0
    row = conn.execute("SELECT MAX(version) FROM _migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the missing migrations (caller holds the write transaction); returns how many."""
    db.table("_migrations").create(
        {"version": int, "applied": float}, pk="version", if_not_exists=True
    )
    current = applied_version(db.conn)
    for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
        step(db)
        db.execute(
            "INSERT INTO _migrations (version, applied) VALUES (?, ?)", [number, time.time()]
        )
    return VERSION - current

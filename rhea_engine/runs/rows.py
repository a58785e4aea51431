"""RunRow, the front ends' view of one run, and the queries that read it from runs.db.

Every query takes a connection the caller holds (the Store, under its lock) and reads
columns by name (sqlite3.Row); only whitelisted names (SORT_KEYS) ever enter the SQL text.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rhea_engine.vocabulary import ACTIVE_STATUSES, FINAL_STATUSES, MISSING

# `rhea ls --sort` names -> runs columns
SORT_KEYS = {
    "id": "id",
    "name": "name",
    "status": "status",
    "created": "created",
    "started": "started",
    "epoch": "last_epoch",
    "last_epoch": "last_epoch",
    "train_loss": "last_train_loss",
    "last_train_loss": "last_train_loss",
    "test_loss": "last_test_loss",
    "last_test_loss": "last_test_loss",
    "best_train_loss": "best_train_loss",
    "best_test_loss": "best_test_loss",
    "eln": "max_eln_violation",
    "ELN_violation": "max_eln_violation",
    "max_eln_violation": "max_eln_violation",
    "lr": "learning_rate",
    "learning_rate": "learning_rate",
    "heartbeat": "heartbeat",
}


@dataclass
class RunRow:
    """One row of `runs`, as front ends see it."""

    id: int
    name: str  # the handle: run1, run2, ... or --name
    sweep: str | None
    status: str
    created: float
    started: float | None
    ended: float | None
    heartbeat: float | None
    pid: int | None
    host: str | None
    slurm_job_id: str | None
    device: str | None
    git_commit: str | None
    git_dirty: bool | None
    data: list[dict[str, Any]]  # [{"path", "sha256", "kind"}]
    config: dict[str, Any]
    error: str | None
    traceback: str | None
    total_epochs: int | None
    last_epoch: int | None
    last_train_loss: float | None
    last_test_loss: float | None
    best_train_loss: float | None
    best_test_loss: float | None
    max_eln_violation: float | None  # ELN_violation (max over samples) of the last epoch
    learning_rate: float | None
    evaluation: dict[str, float] = field(default_factory=dict)  # filled by get_run only
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # [{"epoch","path","kind"}]
    path: Path | None = None  # the run directory
    fail_epoch: int | None = None  # diverged/failed: the epoch and task that went first
    fail_task: str | None = None
    status_set_at: float | None = None  # when a front end last set the status

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def row_from(values: Mapping[str, Any] | sqlite3.Row, runs_root: Path) -> RunRow:
    """A RunRow from a `runs` row (a sqlite3.Row or a {column: value} mapping).

    A run whose directory is gone reads as `missing`, with the status it had in its error.
    """
    path = runs_root / values["name"]
    status, error = values["status"], values["error"]
    if not path.is_dir():
        error = (
            f"The run directory {path} is gone (deleted outside Rhea); the run was {status}. "
            f"`rhea rm {values['name']}` removes its record; restoring the directory brings "
            "the run back."
        )
        status = MISSING
    return RunRow(
        id=values["id"],
        name=values["name"],
        sweep=values["sweep"],
        status=status,
        created=values["created"],
        started=values["started"],
        ended=values["ended"],
        heartbeat=values["heartbeat"],
        pid=values["pid"],
        host=values["host"],
        slurm_job_id=values["slurm_job_id"],
        device=values["device"],
        git_commit=values["git_commit"],
        git_dirty=None if values["git_dirty"] is None else bool(values["git_dirty"]),
        data=json.loads(values["data"]) if values["data"] else [],
        config=json.loads(values["config"]) if values["config"] else {},
        error=error,
        traceback=values["traceback"],
        total_epochs=values["total_epochs"],
        last_epoch=values["last_epoch"],
        last_train_loss=values["last_train_loss"],
        last_test_loss=values["last_test_loss"],
        best_train_loss=values["best_train_loss"],
        best_test_loss=values["best_test_loss"],
        max_eln_violation=values["max_eln_violation"],
        learning_rate=values["learning_rate"],
        path=path,
        fail_epoch=values["fail_epoch"],
        fail_task=values["fail_task"],
        status_set_at=values["status_set_at"],
    )


@dataclass(frozen=True)
class IngestState:
    """Where ingestion of one run stands: what a refresh needs before it reads any events."""

    id: int
    name: str
    status: str
    events_offset: int
    pid: int | None
    slurm_job_id: str | None

    COLUMNS: ClassVar[str] = "id, name, status, events_offset, pid, slurm_job_id"

    @classmethod
    def from_row(cls, values: Mapping[str, Any] | sqlite3.Row) -> IngestState:
        return cls(
            id=values["id"],
            name=values["name"],
            status=values["status"],
            events_offset=values["events_offset"],
            pid=values["pid"],
            slurm_job_id=values["slurm_job_id"],
        )

    @property
    def watched(self) -> bool:
        """Whether a worker may still run for it (a process or a Slurm job to check)."""
        return self.status in ACTIVE_STATUSES and bool(self.pid or self.slurm_job_id)


def find(conn: sqlite3.Connection, handle: str) -> sqlite3.Row | None:
    """The `runs` row of a run by name, or by numeric id."""
    found = conn.execute("SELECT * FROM runs WHERE name = ?", (handle,)).fetchone()
    if found is None and handle.isdigit() and len(handle) < 19:
        found = conn.execute("SELECT * FROM runs WHERE id = ?", (int(handle),)).fetchone()
    return found  # type: ignore[no-any-return]


def with_details(conn: sqlite3.Connection, row: RunRow) -> RunRow:
    """`row` with its final evaluation and its checkpoints."""
    evaluation = conn.execute("SELECT name, value FROM evaluations WHERE run = ?", (row.id,))
    row.evaluation = {e["name"]: math.nan if e["value"] is None else e["value"] for e in evaluation}
    checkpoints = conn.execute(
        "SELECT path, epoch, kind, t FROM checkpoints WHERE run = ? ORDER BY epoch, t", (row.id,)
    )
    row.checkpoints = [dict(c) for c in checkpoints]
    return row


def select(
    conn: sqlite3.Connection,
    sweep: str | None,
    status: str | None,
    sort: str | None,
    descending: bool,
) -> list[sqlite3.Row]:
    """`runs` rows of a sweep and with a stored status, sorted by a SORT_KEYS column (then id)."""
    clauses, params = [], []
    if sweep is not None:
        clauses.append("sweep = ?")
        params.append(sweep)
    if status is not None and status != MISSING:  # missing is derived (row_from), not stored
        clauses.append("status = ?")
        params.append(status)
    column = SORT_KEYS[sort] if sort is not None else "id"
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = f"{column} IS NULL, {column} {'DESC' if descending else 'ASC'}, id"
    sql = f"SELECT * FROM runs {where} ORDER BY {order}"  # noqa: S608 (whitelisted names)
    return conn.execute(sql, params).fetchall()


def series(
    conn: sqlite3.Connection, run_id: int, names: list[str] | None, since_epoch: int
) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch series {metric name: [(epoch, value), ...]} of one run, sorted by epoch."""
    if names is not None and not names:
        return {}
    sql = "SELECT name, epoch, value FROM metrics WHERE run = ?"
    params: list[Any] = [run_id]
    if names is not None:
        sql += f" AND name IN ({','.join('?' * len(names))})"
        params += list(names)
    if since_epoch:
        sql += " AND epoch >= ?"
        params.append(since_epoch)
    # the hot path of plots and compare: plain tuples of the three columns selected above
    # (sqlite3.Row objects would double the time of a long series)
    cursor = conn.cursor()
    cursor.row_factory = None
    found = cursor.execute(sql + " ORDER BY name, epoch", params).fetchall()
    return {
        name: [(epoch, math.nan if value is None else value) for _, epoch, value in group]
        for name, group in itertools.groupby(found, key=lambda r: r[0])
    }


def sweeps(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Sweeps with their spec and a count of their runs per status."""
    counted = conn.execute(
        "SELECT sweep, status, COUNT(*) AS n FROM runs WHERE sweep IS NOT NULL "
        "GROUP BY sweep, status"
    )
    counts: dict[str, dict[str, int]] = {}
    for r in counted:
        counts.setdefault(r["sweep"], {})[r["status"]] = r["n"]
    return [
        {
            "name": s["name"],
            "created": s["created"],
            "spec": json.loads(s["spec"] or "{}"),
            "runs": sum(counts.get(s["name"], {}).values()),
            "statuses": counts.get(s["name"], {}),
        }
        for s in conn.execute("SELECT name, created, spec FROM sweeps ORDER BY created")
    ]

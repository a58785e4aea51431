"""RunRow, the front ends' view of one run, and the queries that read it from runs.db.

Every query takes a connection the caller holds (the Store, under its lock) and reads
columns by name (sqlite3.Row); only whitelisted names (SORT_KEYS, FILTER_KEYS) and the
fragments `where_sql` compiles from them ever enter the SQL text.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rhea_engine.vocabulary import ACTIVE_STATUSES, FINAL_STATUSES, MISSING

if TYPE_CHECKING:
    from rhea_engine.runs.where_sql import Condition

_DEFAULT_NAME = re.compile(r"run(\d{1,18})")
# `rhea ls --sort` names -> runs columns (or this one fixed expression of the run's config)
CONFIGURED_LR = "json_extract(runs.config, '$.learning_rate')"
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
    "lr": CONFIGURED_LR,  # the configured rate, as the listing's `lr` column shows it
    "learning_rate": CONFIGURED_LR,
    "lr_now": "learning_rate",  # the scheduler's rate at the last epoch
    "epoch_seconds": "epoch_seconds",
    "heartbeat": "heartbeat",
}
# `--where` keys -> runs columns: the sort keys, the runs listing's column headers (run, train,
# test, best; see rhea_tui.format.RUN_COLUMNS) and the other summary columns. The learning
# rate is the exception: `learning_rate` and `lr` name the configured rate (a config key, as
# the listing shows it); the scheduler's rate at the last epoch is `lr_now`.
FILTER_KEYS = {
    **{k: c for k, c in SORT_KEYS.items() if c not in ("learning_rate", CONFIGURED_LR)},
    "lr_now": "learning_rate",
    "run": "name",
    "sweep": "sweep",
    "train": "last_train_loss",
    "test": "last_test_loss",
    "best": "best_test_loss",
    "ended": "ended",
    "host": "host",
    "device": "device",
    "pid": "pid",
    "slurm_job_id": "slurm_job_id",
    "git_commit": "git_commit",
    "git_dirty": "git_dirty",
    "total_epochs": "total_epochs",
    "fail_epoch": "fail_epoch",
    "fail_task": "fail_task",
    "error": "error",
}
# columns a filter reads as their config key until the worker reports them (as listed)
FILTER_FALLBACKS = {"device": "device"}
TIME_COLUMNS = ("created", "started", "ended", "heartbeat")  # unix seconds
# a run's columns and its tags (a JSON list), as every RunRow is read
RUN_SELECT = (
    "SELECT runs.*, (SELECT json_group_array(tags.tag) FROM tags WHERE tags.run = runs.id) "
    "AS tags FROM runs"
)


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
    max_eln_violation: float | None  # max over all epochs: vocabulary.MAX_ELN_METRICS
    learning_rate: float | None  # the scheduler's rate at the last epoch
    evaluation: dict[str, float] = field(default_factory=dict)  # filled by get_run only
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # [{"epoch","path","kind"}]
    path: Path | None = None  # the run directory
    fail_epoch: int | None = None  # diverged/failed: the epoch and task that went first
    fail_task: str | None = None
    status_set_at: float | None = None  # when a front end last set the status
    tags: list[str] = field(default_factory=list)  # `rhea tag`, sorted
    max_eln_metric: str | None = None  # the metric max_eln_violation is of
    epoch_seconds: float | None = None  # wall time of the last epoch
    gpu: dict[str, Any] | None = None  # last GPU figures: {"t", "devices": [...]}

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def may_have_worker(self) -> bool:
        """Active with a process or a Slurm job, as the last refresh saw it: not deletable."""
        worker = self.pid or self.slurm_job_id or self.status == "running"
        return self.status in ACTIVE_STATUSES and bool(worker)


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
        tags=sorted(json.loads(values["tags"])) if "tags" in values.keys() else [],
        max_eln_metric=values["max_eln_metric"],
        epoch_seconds=values["epoch_seconds"],
        gpu=json.loads(values["gpu"]) if values["gpu"] else None,
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
    found = conn.execute(f"{RUN_SELECT} WHERE runs.name = ?", (handle,)).fetchone()
    if found is None and handle.isdigit() and len(handle) < 19:
        found = conn.execute(f"{RUN_SELECT} WHERE runs.id = ?", (int(handle),)).fetchone()
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
    where: Condition | None = None,
) -> list[sqlite3.Row]:
    """`runs` rows of a sweep, with a stored status and matching a filter, sorted by a
    SORT_KEYS column (then id)."""
    clauses: list[str] = []
    params: list[Any] = []
    if sweep is not None:
        clauses.append("runs.sweep = ?")
        params.append(sweep)
    if status is not None and status != MISSING:  # missing is derived (row_from), not stored
        clauses.append("runs.status = ?")
        params.append(status)
    if where is not None:
        clauses.append(where.sql)
        params.extend(where.params)
    column = SORT_KEYS[sort] if sort is not None else "id"
    column = column if column == CONFIGURED_LR else f"runs.{column}"
    condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = f"{column} IS NULL, {column} {'DESC' if descending else 'ASC'}, runs.id"
    sql = f"{RUN_SELECT} {condition} ORDER BY {order}"  # whitelisted names, compiled fragments
    return conn.execute(sql, params).fetchall()


def config_keys(conn: sqlite3.Connection) -> list[str]:
    """The top-level keys of the stored configs of all runs."""
    found = conn.execute("SELECT DISTINCT item.key FROM runs, json_each(runs.config) AS item")
    return [row[0] for row in found]


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


def free_name(conn: sqlite3.Connection, runs_root: Path) -> str:
    """run<N+1> after the highest runN in use (ids do not count: named runs take them too)."""
    numbers = [
        int(match.group(1))
        for row in conn.execute("SELECT name FROM runs WHERE name LIKE 'run%'")
        if (match := _DEFAULT_NAME.fullmatch(row["name"]))
    ]
    for number in itertools.count(max(numbers, default=0) + 1):
        chosen = f"run{number}"
        if not (runs_root / chosen).exists():
            return chosen
    raise AssertionError("unreachable")


def unknown_run_message(conn: sqlite3.Connection, home: Path, handle: str) -> str:
    """What to say when no run is called `handle`: the latest runs' names."""
    names = [r["name"] for r in conn.execute("SELECT name FROM runs ORDER BY id DESC LIMIT 6")]
    count = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    if not names:
        return f"There is no run '{handle}': the Rhea home {home} has no runs yet."
    more = f" ({count} in all; `rhea ls` lists them)" if count > len(names) else ""
    return f"There is no run '{handle}' in {home}. Known runs: {', '.join(reversed(names))}{more}."

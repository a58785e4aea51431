"""RunRow, the front ends' view of one run, and the statuses and sort keys of the runs list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine.vocabulary import FINAL_STATUSES

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


def row_from(values: dict[str, Any], runs_root: Path) -> RunRow:
    """A RunRow from a `runs` row as a {column: value} dict."""
    return RunRow(
        id=values["id"],
        name=values["name"],
        sweep=values["sweep"],
        status=values["status"],
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
        error=values["error"],
        traceback=values["traceback"],
        total_epochs=values["total_epochs"],
        last_epoch=values["last_epoch"],
        last_train_loss=values["last_train_loss"],
        last_test_loss=values["last_test_loss"],
        best_train_loss=values["best_train_loss"],
        best_test_loss=values["best_test_loss"],
        max_eln_violation=values["max_eln_violation"],
        learning_rate=values["learning_rate"],
        path=runs_root / values["name"],
        fail_epoch=values["fail_epoch"],
        fail_task=values["fail_task"],
        status_set_at=values["status_set_at"],
    )


def brief_row(row: tuple[Any, ...]) -> RunRow:
    """A partial RunRow with what the liveness check needs (from ingest's slim query)."""
    return RunRow(
        id=row[0],
        name=row[1],
        sweep=None,
        status=row[2],
        created=row[9],
        started=row[8],
        ended=None,
        heartbeat=row[7],
        pid=row[4],
        host=row[5],
        slurm_job_id=row[6],
        device=None,
        git_commit=None,
        git_dirty=None,
        data=[],
        config={},
        error=None,
        traceback=None,
        total_epochs=None,
        last_epoch=None,
        last_train_loss=None,
        last_test_loss=None,
        best_train_loss=None,
        best_test_loss=None,
        max_eln_violation=None,
        learning_rate=None,
        status_set_at=row[10],
    )

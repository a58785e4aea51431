"""The SQLite run store (runs.db), owned by the front ends. CONTRACT STUB: to be implemented.

Front ends call `Store(home).ingest()` before they read; ingestion reads new lines of each
run's events.jsonl from its recorded byte offset and applies them in one transaction
(idempotent: the offset moves in the same transaction as the rows it covers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Statuses (DESIGN.md §3) plus `pruned` (early-stopped sweep trials).
STATUSES = ("queued", "running", "completed", "failed", "diverged", "stopped", "lost", "pruned")
FINAL_STATUSES = ("completed", "failed", "diverged", "stopped", "lost", "pruned")


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
    max_eln_violation: float | None
    learning_rate: float | None
    evaluation: dict[str, float] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # [{"epoch","path","kind"}]
    path: Path | None = None  # the run directory


class Store:
    """runs.db under `home` (WAL, synchronous=NORMAL, busy_timeout, retried commits)."""

    def __init__(self, home: str | Path) -> None:
        raise NotImplementedError

    # writing (front ends only)
    def create_run(
        self, config: dict[str, Any], name: str | None = None, sweep: str | None = None,
        status: str = "queued",
    ) -> RunRow:
        """Allocate a handle (run1, run2, ... or `name`), create runs/<name>/ with config.json."""
        raise NotImplementedError

    def create_sweep(self, name: str, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    def set_status(self, handle: str, status: str, error: str | None = None, **columns: Any) -> None:
        raise NotImplementedError

    def delete_run(self, handle: str) -> None:
        raise NotImplementedError

    def ingest(self, handles: list[str] | None = None) -> int:
        """Ingest new events of all (or the given) runs; returns the number of events applied."""
        raise NotImplementedError

    # reading
    def get_run(self, handle: str) -> RunRow:
        """By name (or numeric id); UnknownRunError with the known handles otherwise."""
        raise NotImplementedError

    def list_runs(
        self, sweep: str | None = None, status: str | None = None, sort: str | None = None,
        descending: bool = False,
    ) -> list[RunRow]:
        raise NotImplementedError

    def resolve_handles(self, handles: list[str]) -> list[RunRow]:
        """Expand `sweep:NAME` and run handles into rows, in order, without duplicates."""
        raise NotImplementedError

    def metrics(
        self, handle: str, names: list[str] | None = None, since_epoch: int = 0
    ) -> dict[str, list[tuple[int, float]]]:
        """Per-epoch series {metric name: [(epoch, value), ...]} sorted by epoch."""
        raise NotImplementedError

    def metric_names(self, handle: str) -> list[str]:
        raise NotImplementedError

    def sweeps(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def data_version(self) -> int:
        """A number that changes whenever anything was ingested or written (cheap poll)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

"""Apply events.jsonl events to one run's rows (runs summary, metrics, checkpoints, evaluations).

Pure database work on a connection the caller holds a write transaction on; the caller
advances the run's byte offset in that same transaction. Every write is an upsert, so
applying the same events twice leaves the same rows.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from rhea_engine.runs.rundir import to_float
from rhea_engine.vocabulary import FINAL_STATUSES

# metric name -> (summary column of the last value, summary column of the best (minimum))
_SUMMARY = {
    "train_loss": ("last_train_loss", "best_train_loss"),
    "test_loss": ("last_test_loss", "best_test_loss"),
    "ELN_violation": ("max_eln_violation", None),
    "learning_rate": ("learning_rate", None),
}


def _number(value: Any) -> float | None:
    try:
        return to_float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _status_allowed(run: dict[str, Any], t: float | None) -> bool:
    """A status a front end set later (pruned, lost, ...) wins over older worker events."""
    set_at = run.get("status_set_at")
    return set_at is None or t is None or t >= set_at


def apply_events(
    conn: sqlite3.Connection, run: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """Apply `events` to run `run` (its column dict); returns the changed `runs` columns."""
    state = dict(run)
    run_id = run["id"]
    metric_rows: list[tuple[int, str, int, float | None]] = []
    for event in events:
        kind = event.get("type")
        t = _number(event.get("t"))
        if t is not None and (state["heartbeat"] is None or t > state["heartbeat"]):
            state["heartbeat"] = t
        if kind == "epoch":
            epoch = _int(event.get("epoch"))
            metrics = event.get("metrics")
            if epoch is None or not isinstance(metrics, dict):
                continue
            state["last_epoch"] = epoch
            for name, raw in metrics.items():
                value = _number(raw)
                if value is None:
                    continue
                metric_rows.append((run_id, str(name), epoch, value))
                columns = _SUMMARY.get(str(name))
                if columns is None:
                    continue
                last, best = columns
                state[last] = value if math.isfinite(value) else None
                if best and math.isfinite(value) and (state[best] is None or value < state[best]):
                    state[best] = value
        elif kind == "start":
            if _status_allowed(state, t):
                state.update(
                    status="running",
                    ended=None,
                    error=None,
                    traceback=None,
                    fail_epoch=None,
                    fail_task=None,
                )
            if t is not None:
                state["started"] = t  # the latest start: a resumed run restarts its clock
            for column in ("host", "device", "git_commit", "slurm_job_id"):
                if event.get(column) is not None:
                    state[column] = str(event[column])
            for column in ("pid", "total_epochs"):
                if _int(event.get(column)) is not None:
                    state[column] = _int(event[column])
            if event.get("git_dirty") is not None:
                state["git_dirty"] = int(bool(event["git_dirty"]))
            if isinstance(event.get("data"), list):
                state["data"] = json.dumps(event["data"])
        elif kind == "status":
            status = event.get("status")
            if not isinstance(status, str) or not _status_allowed(state, t):
                continue
            state["status"] = status
            if status in FINAL_STATUSES:
                state["ended"] = t
                state["error"] = event.get("error")
                state["traceback"] = event.get("traceback")
                failed = status in ("failed", "diverged")
                state["fail_epoch"] = _int(event.get("epoch")) if failed else None
                state["fail_task"] = event.get("task") if failed else None
            else:
                state.update(
                    ended=None, error=None, traceback=None, fail_epoch=None, fail_task=None
                )
        elif kind == "checkpoint":
            if isinstance(event.get("path"), str):
                conn.execute(
                    "INSERT OR REPLACE INTO checkpoints (run, path, epoch, kind, t) VALUES (?, ?, ?, ?, ?)",
                    (
                        run_id,
                        event["path"],
                        _int(event.get("epoch")),
                        str(event.get("kind", "")),
                        t,
                    ),
                )
        elif kind == "evaluation":
            results = event.get("results")
            if isinstance(results, dict):
                conn.executemany(
                    "INSERT OR REPLACE INTO evaluations (run, name, value) VALUES (?, ?, ?)",
                    [
                        (run_id, str(k), _number(v))
                        for k, v in results.items()
                        if _number(v) is not None
                    ],
                )
    if metric_rows:
        conn.executemany(
            "INSERT OR REPLACE INTO metrics (run, name, epoch, value) VALUES (?, ?, ?, ?)",
            metric_rows,
        )
    return {key: value for key, value in state.items() if run.get(key) != value or key not in run}

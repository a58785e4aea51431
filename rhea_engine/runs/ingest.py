"""Apply events.jsonl events to one run's rows (runs summary, metrics, checkpoints, evaluations).

Pure database work on a connection the caller holds a write transaction on; the caller
advances the run's byte offset in that same transaction. Every write is an upsert, so
applying the same events twice leaves the same rows.

Events come from files anyone can edit, so no value in them may break the store: a number
too large for a float counts as infinite; an integer outside SQLite's 64-bit range, a
time outside 1970..5000, a status Rhea does not know and a field of the wrong type count
as absent. An event that
cannot be placed without such a field (an epoch without a usable epoch number) is skipped,
like a line that is not JSON; the run's other events, and every other run, are unaffected.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from typing import Any

from rhea_engine.runs.rows import RunRow
from rhea_engine.runs.rundir import EventChunk
from rhea_engine.vocabulary import FINAL_STATUSES, MAX_ELN_METRICS, MISSING, STATUSES

# metric name -> (summary column of the last value, summary column of the best (minimum))
_SUMMARY = {
    "train_loss": ("last_train_loss", "best_train_loss"),
    "test_loss": ("last_test_loss", "best_test_loss"),
    "learning_rate": ("learning_rate", None),
    "epoch_seconds": ("epoch_seconds", None),
}
# the columns a `reset` event clears: what the run recorded about training so far
_HISTORY = (
    "last_epoch",
    "last_train_loss",
    "last_test_loss",
    "best_train_loss",
    "best_test_loss",
    "max_eln_violation",
    "max_eln_metric",
    "learning_rate",
    "epoch_seconds",
    "gpu",
    "ended",
    "error",
    "traceback",
    "fail_epoch",
    "fail_task",
)
_SQLITE_INT = (-(2**63), 2**63 - 1)
_LATEST_TIME = 95_617_584_000.0  # 5000-01-01: later "times" are damage, not clocks
_STORED_STATUSES = tuple(s for s in STATUSES if s != MISSING)
_LARGEST_FLOAT = 1.7976931348623157e308  # SQLite keeps inf; NaN is stored as NULL


def _number(value: Any) -> float | None:
    """A float, or None; events write non-finite values as 'nan', 'inf', '-inf'."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        return math.inf if int(value) > 0 else -math.inf
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    """An integer SQLite can store, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = int(value)
    except (ValueError, OverflowError):  # 'abc', nan, inf
        return None
    return number if _SQLITE_INT[0] <= number <= _SQLITE_INT[1] else None


def event_time(value: Any) -> float | None:
    """A unix time, or None unless it is a number between 1970 and the year 5000."""
    t = _number(value)
    return t if t is not None and 0.0 <= t < _LATEST_TIME else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def max_eln(conn: sqlite3.Connection, run_id: int) -> tuple[float | None, str | None]:
    """(max ELN, the metric it is of): see `vocabulary.MAX_ELN_METRICS`.

    Read from the stored series, so a resumed run's replaced epochs, a rebuilt runs.db and
    a migrated one all give the same figure; non-finite epochs (a diverged run's last) are
    left out, as they are of the best losses.
    """
    for name in MAX_ELN_METRICS:
        found = conn.execute(
            "SELECT MAX(value) FROM metrics WHERE run = ? AND name = ? AND abs(value) <= ?",
            (run_id, name, _LARGEST_FLOAT),
        ).fetchone()
        if found is not None and found[0] is not None:
            return float(found[0]), name
    return None, None


def gpu_figures(event: dict[str, Any], t: float | None) -> str | None:
    """A `gpu` event's device figures as the JSON of runs.gpu (None if it holds none)."""
    devices = []
    for raw in event.get("devices") or []:
        if not isinstance(raw, dict):
            continue
        index = raw.get("index")
        device: dict[str, Any] = {
            "index": _int(index) if not isinstance(index, str) else index[:64],  # or a UUID
            "name": str(raw.get("name") or "GPU")[:64],
        }
        for key in ("utilization", "memory_used", "memory_total", "process_memory"):
            device[key] = _number(raw.get(key))
        devices.append(device)
    return json.dumps({"t": t, "devices": devices}) if devices else None


def _status_allowed(run: dict[str, Any], t: float | None) -> bool:
    """A status a front end set later (pruned, lost, ...) wins over older worker events."""
    set_at = run.get("status_set_at")
    return set_at is None or t is None or t >= set_at


def _apply_epoch(state: dict[str, Any], event: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    epoch = _int(event.get("epoch"))
    metrics = event.get("metrics")
    if epoch is None or not isinstance(metrics, dict):
        return
    state["last_epoch"] = epoch
    for name, raw in metrics.items():
        value = _number(raw)
        if value is None:
            continue
        rows.append((state["id"], str(name), epoch, value))
        columns = _SUMMARY.get(str(name))
        if columns is None:
            continue
        last, best = columns
        state[last] = value if math.isfinite(value) else None
        if best and math.isfinite(value) and (state[best] is None or value < state[best]):
            state[best] = value


def _apply_start(state: dict[str, Any], event: dict[str, Any], t: float | None) -> None:
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
        if isinstance(event.get(column), (str, int)) and not isinstance(event[column], bool):
            state[column] = str(event[column])
    for column in ("pid", "total_epochs"):
        if _int(event.get(column)) is not None:
            state[column] = _int(event[column])
    if event.get("git_dirty") is not None:
        state["git_dirty"] = int(bool(event["git_dirty"]))
    if isinstance(event.get("data"), list):
        state["data"] = json.dumps([item for item in event["data"] if isinstance(item, dict)])


def _apply_status(state: dict[str, Any], event: dict[str, Any], t: float | None) -> None:
    status = event.get("status")
    if status not in _STORED_STATUSES or not _status_allowed(state, t):
        return
    state["status"] = status
    if status in FINAL_STATUSES:
        failed = status in ("failed", "diverged")
        state.update(
            ended=t,
            error=_text(event.get("error")),
            traceback=_text(event.get("traceback")),
            fail_epoch=_int(event.get("epoch")) if failed else None,
            fail_task=_text(event.get("task")) if failed else None,
        )
    else:
        state.update(ended=None, error=None, traceback=None, fail_epoch=None, fail_task=None)


def _apply_reset(conn: sqlite3.Connection, state: dict[str, Any], rows: list[Any]) -> None:
    """The run starts again from scratch: drop everything recorded about training so far."""
    rows.clear()
    for table in ("metrics", "checkpoints", "evaluations"):
        conn.execute(f"DELETE FROM {table} WHERE run = ?", (state["id"],))  # noqa: S608
    state.update(dict.fromkeys(_HISTORY))


def apply_events(
    conn: sqlite3.Connection, run: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """Apply `events` to run `run` (its column dict); returns the changed `runs` columns."""
    state = dict(run)
    run_id = run["id"]
    metric_rows: list[tuple[Any, ...]] = []
    eln_seen = False
    for event in events:
        kind = event.get("type")
        t = event_time(event.get("t"))
        if t is not None and (state["heartbeat"] is None or t > state["heartbeat"]):
            state["heartbeat"] = t
        if kind == "epoch":
            _apply_epoch(state, event, metric_rows)
            eln_seen = eln_seen or any(n in MAX_ELN_METRICS for n in event.get("metrics") or ())
        elif kind == "start":
            _apply_start(state, event, t)
        elif kind == "status":
            _apply_status(state, event, t)
        elif kind == "reset":
            _apply_reset(conn, state, metric_rows)
            eln_seen = False
        elif kind == "gpu":
            state["gpu"] = gpu_figures(event, t) or state.get("gpu")
        elif kind == "checkpoint" and isinstance(event.get("path"), str):
            conn.execute(
                "INSERT OR REPLACE INTO checkpoints (run, path, epoch, kind, t) VALUES (?, ?, ?, ?, ?)",
                (run_id, event["path"], _int(event.get("epoch")), str(event.get("kind", "")), t),
            )
        elif kind == "evaluation" and isinstance(event.get("results"), dict):
            results = {str(k): _number(v) for k, v in event["results"].items()}
            conn.executemany(
                "INSERT OR REPLACE INTO evaluations (run, name, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in results.items() if v is not None],
            )
    if metric_rows:
        conn.executemany(
            "INSERT OR REPLACE INTO metrics (run, name, epoch, value) VALUES (?, ?, ?, ?)",
            metric_rows,
        )
    if eln_seen:
        state["max_eln_violation"], state["max_eln_metric"] = max_eln(conn, run_id)
    return {key: value for key, value in state.items() if run.get(key) != value or key not in run}


def apply_chunk(
    conn: sqlite3.Connection, run_id: int, offset: int, chunk: EventChunk
) -> int | None:
    """Apply events read from byte `offset` of a run's events.jsonl and advance its offset.

    Returns the number applied, or None when the run's offset is no longer `offset`
    (another front end ingested meanwhile). A chunk read from 0 that ends before the
    recorded offset comes from a replaced file and is applied whole.
    """
    found = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if found is None:
        return 0  # deleted meanwhile
    run = dict(found)
    replaced = offset == 0 and chunk.end_offset < run["events_offset"]
    if run["events_offset"] != offset and not replaced:
        return None
    changes = apply_events(conn, run, chunk.events)
    changes["events_offset"] = chunk.end_offset
    assignments = ", ".join(f"{column} = ?" for column in changes)
    conn.execute(
        f"UPDATE runs SET {assignments} WHERE id = ?",  # noqa: S608 (column names are ours)
        (*changes.values(), run_id),
    )
    return len(chunk.events)


def apply_verdict(
    conn: sqlite3.Connection, row: RunRow, status: str, error: str, traceback: str | None
) -> bool:
    """Settle a run whose worker is gone, unless something new arrived since `row` was read
    (its status or heartbeat moved: decide on the next refresh); returns whether it was."""
    current = conn.execute("SELECT status, heartbeat FROM runs WHERE id = ?", (row.id,)).fetchone()
    if current is None or (current["status"], current["heartbeat"]) != (row.status, row.heartbeat):
        return False
    now = time.time()
    conn.execute(
        "UPDATE runs SET status = ?, error = ?, traceback = ?, ended = ?, status_set_at = ? "
        "WHERE id = ?",
        (status, error, traceback, now, now, row.id),
    )
    return True

"""Recreate runs.db rows from the run directories (config, events, status and tags files).

Also adds the rows of run directories that appeared without a front end (a script logging
through `rhea_engine.tracking` never opens runs.db): `adopt_run_dirs`.

Runs inside the caller's write transaction; the files are read one run at a time, so a big
home is never held in memory at once. Values read from the files are checked as ingestion
checks events: a hand-edited file can lose its own fields, never break the rebuild.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from rhea_engine.errors import RheaError
from rhea_engine.runs.ingest import apply_chunk, event_time
from rhea_engine.runs.rundir import (
    RUNS_DIR,
    STATUS_FILE,
    SWEEPS_DIR,
    check_run_name,
    read_config,
    read_events,
    read_json,
    read_tags,
)
from rhea_engine.vocabulary import MISSING, STATUSES

_MAX_ID = 2**62  # recorded ids above this are not trusted (room is left for new ones)


def _run_dirs(home: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    root = home / RUNS_DIR
    if not root.is_dir():
        return []
    for directory in sorted(root.iterdir()):
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        try:
            check_run_name(directory.name)
            found.append((directory, read_config(directory)))
        except RheaError:
            continue  # not a run directory (or a damaged one): left alone
    return found


def _time(value: Any, fallback: float | None) -> float | None:
    t = event_time(value) if not isinstance(value, str) else None
    return fallback if t is None else t


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _recorded_id(stored: dict[str, Any]) -> int | None:
    value = (stored.get("meta") or {}).get("id")
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MAX_ID
    return value if ok else None


def _insert_sweeps(conn: sqlite3.Connection, home: Path) -> None:
    for file in sorted((home / SWEEPS_DIR).glob("*.json")):
        sweep = read_json(file)
        if sweep and isinstance(sweep.get("name"), str):
            spec = sweep.get("spec") if isinstance(sweep.get("spec"), dict) else {}
            conn.execute(
                "INSERT OR IGNORE INTO sweeps (name, created, spec) VALUES (?, ?, ?)",
                (
                    sweep["name"],
                    _time(sweep.get("created"), file.stat().st_mtime),
                    json.dumps(spec, sort_keys=True),
                ),
            )


def _insert_run(
    conn: sqlite3.Connection, run_id: int, directory: Path, stored: dict[str, Any]
) -> None:
    meta: dict[str, Any] = stored["meta"] if isinstance(stored.get("meta"), dict) else {}
    created = _time(meta.get("created"), directory.stat().st_mtime)
    sweep = _text(meta.get("sweep"))
    if sweep:
        conn.execute(
            "INSERT OR IGNORE INTO sweeps (name, created, spec) VALUES (?, ?, '{}')",
            (sweep, created),
        )
    override = read_json(directory / STATUS_FILE) or {}
    status = next(
        (s for s in (override.get("status"), meta.get("status")) if s in STATUSES and s != MISSING),
        "queued",
    )
    conn.execute(
        "INSERT INTO runs (id, name, sweep, status, created, config, error, traceback, "
        "status_set_at, events_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        (
            run_id,
            directory.name,
            sweep,
            status,
            created,
            json.dumps(stored.get("config") or {}),
            _text(override.get("error")),
            _text(override.get("traceback")),
            _time(override.get("t"), None),
        ),
    )
    conn.executemany(
        "INSERT INTO tags (run, tag) VALUES (?, ?)", [(run_id, t) for t in read_tags(directory)]
    )
    apply_chunk(conn, run_id, 0, read_events(directory, 0))


def rebuild_rows(conn: sqlite3.Connection, home: Path) -> int:
    """Replace all rows (caller holds the write transaction); returns the number of runs.

    `conn` must return sqlite3.Row rows. Runs keep the ids recorded in their config.json;
    a run without one (or with a taken one) gets the next free id.
    """
    for table in ("metrics", "checkpoints", "evaluations", "tags", "runs", "sweeps"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
    _insert_sweeps(conn, home)
    entries = _run_dirs(home)
    entries.sort(key=lambda e: (_recorded_id(e[1]) or _MAX_ID, e[0].name))
    used: set[int] = set()
    next_id = max([_recorded_id(stored) or 0 for _, stored in entries] + [0]) + 1
    for directory, stored in entries:
        run_id = _recorded_id(stored)
        if run_id is None or run_id in used:
            run_id, next_id = next_id, next_id + 1
        used.add(run_id)
        _insert_run(conn, run_id, directory, stored)
    return len(entries)


def adopt_run_dirs(conn: sqlite3.Connection, home: Path, names: list[str]) -> list[str]:
    """Rows for the run directories `names` (caller holds the write transaction).

    Each name is checked again inside the transaction: a front end may have created it
    meanwhile. A directory without a readable config.json is not (yet) a run and is left
    alone. Returns the names added.
    """
    adopted = []
    for name in names:
        directory = home / RUNS_DIR / name
        try:
            check_run_name(name)
            stored = read_config(directory)
        except RheaError:
            continue
        if conn.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone():
            continue
        run_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM runs").fetchone()[0])
        _insert_run(conn, run_id, directory, stored)
        adopted.append(name)
    return adopted

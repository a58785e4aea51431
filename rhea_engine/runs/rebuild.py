"""Recreate runs.db rows from the run directories (config.json, events.jsonl, status.json)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from rhea_engine.errors import RheaError
from rhea_engine.runs.ingest import apply_events
from rhea_engine.runs.rundir import RUNS_DIR, check_run_name, read_config, read_events

SWEEPS_DIR = "sweeps"
STATUS_FILE = "status.json"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


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


def rebuild_rows(conn: sqlite3.Connection, home: Path) -> int:
    """Replace all rows (caller holds the write transaction); returns the number of runs."""
    for table in ("metrics", "checkpoints", "evaluations", "runs", "sweeps"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
    for file in sorted((home / SWEEPS_DIR).glob("*.json")):
        sweep = _read_json(file)
        if sweep and isinstance(sweep.get("name"), str):
            conn.execute(
                "INSERT OR IGNORE INTO sweeps (name, created, spec) VALUES (?, ?, ?)",
                (
                    sweep["name"],
                    sweep.get("created") or file.stat().st_mtime,
                    json.dumps(sweep.get("spec") or {}, sort_keys=True),
                ),
            )
    entries = _run_dirs(home)

    def recorded_id(entry: tuple[Path, dict[str, Any]]) -> int:
        value = entry[1].get("meta", {}).get("id")
        return value if isinstance(value, int) and value > 0 else 1 << 62

    entries.sort(key=lambda e: (recorded_id(e), e[0].name))
    used: set[int] = set()
    next_id = max([recorded_id(e) for e in entries if recorded_id(e) < 1 << 62] + [0]) + 1
    conn.row_factory = sqlite3.Row
    try:
        for directory, stored in entries:
            meta = stored.get("meta") or {}
            run_id = recorded_id((directory, stored))
            if run_id in used or run_id >= 1 << 62:
                run_id, next_id = next_id, next_id + 1
            used.add(run_id)
            sweep = meta.get("sweep")
            if sweep:
                conn.execute(
                    "INSERT OR IGNORE INTO sweeps (name, created, spec) VALUES (?, ?, '{}')",
                    (sweep, meta.get("created") or directory.stat().st_mtime),
                )
            override = _read_json(directory / STATUS_FILE) or {}
            conn.execute(
                "INSERT INTO runs (id, name, sweep, status, created, config, error, traceback, "
                "status_set_at, events_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    run_id,
                    directory.name,
                    sweep,
                    override.get("status") or meta.get("status") or "queued",
                    meta.get("created") or directory.stat().st_mtime,
                    json.dumps(stored.get("config") or {}),
                    override.get("error"),
                    override.get("traceback"),
                    override.get("t"),
                ),
            )
            run = dict(conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
            chunk = read_events(directory, 0)
            changes = apply_events(conn, run, chunk.events)
            changes["events_offset"] = chunk.end_offset
            assignments = ", ".join(f"{column} = ?" for column in changes)
            conn.execute(
                f"UPDATE runs SET {assignments} WHERE id = ?",
                (*changes.values(), run_id),  # noqa: S608
            )
    finally:
        conn.row_factory = None
    return len(entries)

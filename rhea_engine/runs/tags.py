"""Run tags in runs.db (the `tags` table) and in each run directory's tags.json.

The Store calls these inside its write transactions; tags.json is rewritten with the whole
set after each change, so that `rhea db rebuild` finds what runs.db had.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from rhea_engine.runs import rundir


def run_tags(conn: sqlite3.Connection, run_id: int) -> list[str]:
    found = conn.execute("SELECT tag FROM tags WHERE run = ? ORDER BY tag", (run_id,))
    return [row[0] for row in found]


def set_tags(
    conn: sqlite3.Connection,
    run_id: int,
    directory: Path | None,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> list[str]:
    """Add, then remove tags of run `run_id` (caller holds the write transaction); the tags
    after it, also written to the run directory's tags.json (unless `directory` is None)."""
    conn.executemany(
        "INSERT OR IGNORE INTO tags (run, tag) VALUES (?, ?)", [(run_id, t) for t in add]
    )
    conn.executemany("DELETE FROM tags WHERE run = ? AND tag = ?", [(run_id, t) for t in remove])
    tags = run_tags(conn, run_id)
    if directory is not None:
        rundir.write_tags(directory, tags)
    return tags


def sweep_tags(conn: sqlite3.Connection, sweep: str) -> list[str]:
    """The tags a sweep gives each of its runs (the spec's "tags")."""
    found = conn.execute("SELECT spec FROM sweeps WHERE name = ?", (sweep,)).fetchone()
    try:
        tags = json.loads(found[0] or "{}").get("tags", []) if found else []
    except (ValueError, AttributeError):
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []

"""The SQLite run store (runs.db), owned by the front ends.

Front ends call `Store(home).ingest()` before they read; ingestion reads new lines of each
run's events.jsonl from its recorded byte offset and applies them in one transaction
(idempotent: the offset moves in the same transaction as the rows it covers). The database
can always be recreated from the run directories with `Store.rebuild()`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rhea_engine.errors import RunError, StoreError, UnknownRunError
from rhea_engine.runs import lifecycle
from rhea_engine.runs.ingest import apply_events
from rhea_engine.runs.rows import SORT_KEYS, RunRow, brief_row, row_from
from rhea_engine.runs.rundir import (
    EVENTS_FILE,
    RUNS_DIR,
    EventChunk,
    check_run_name,
    read_config,
    read_events,
    run_dir,
    write_config,
)
from rhea_engine.runs.schema import RUN_COLUMNS, VERSION, applied_version, migrate
from rhea_engine.vocabulary import ACTIVE_STATUSES, FINAL_STATUSES, STATUSES

DB_FILE = "runs.db"
SWEEPS_DIR = "sweeps"
STATUS_FILE = "status.json"  # the last status a front end set, so a rebuild keeps it
BUSY_TIMEOUT_MS = 5000
BUSY_PATIENCE_S = 120.0
T = TypeVar("T")

_SLIM = (
    "id, name, status, events_offset, pid, host, slurm_job_id, heartbeat, started, created, "
    "status_set_at"
)
_SETTABLE = set(RUN_COLUMNS) - {"id", "name", "config", "events_offset", "status_set_at"}


def _failure(path: Path, exc: sqlite3.DatabaseError) -> str:
    return (
        f"The run store {path} failed ({exc}). If another program holds it for long, try "
        "again; if it is damaged, `rhea db rebuild` recreates it from the run directories."
    )


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Store:
    """runs.db under `home` (WAL, synchronous=NORMAL, busy_timeout, retried commits)."""

    @classmethod
    def open_existing(cls, home: str | Path) -> Store:
        """The store of an existing Rhea home; StoreError rather than creating one elsewhere."""
        path = Path(home)
        if not path.is_dir():
            raise StoreError(f"The Rhea home {path} does not exist; give --home or set RHEA_HOME.")
        if not (path / "runs.db").exists() and not (path / RUNS_DIR).is_dir():
            raise StoreError(
                f"{path} is not a Rhea home yet (no runs.db or runs/); start a run there with "
                "`rhea run`, or give --home or set RHEA_HOME."
            )
        return cls(path)

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home).expanduser().resolve()
        self.runs_root = self.home / RUNS_DIR
        self.path = self.home / DB_FILE
        self.runs_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._changes = 0
        fresh = not self.path.exists()
        try:
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL").fetchone())
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA cache_size = -65536")  # KiB: per-run series stay cached
            if applied_version(self._conn) < VERSION:
                self._write(lambda: migrate(self.db))
            if fresh and any(
                p.is_dir() and not p.name.startswith(".") for p in self.runs_root.iterdir()
            ):
                self.rebuild()  # runs.db was deleted or lost: the run directories hold it all
        except sqlite3.DatabaseError as exc:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            raise StoreError(
                f"The run store {self.path} cannot be opened ({exc}). If it is damaged, move it "
                "aside and run `rhea db rebuild` to recreate it from the run directories."
            ) from exc

    @property
    def db(self) -> Any:
        """The connection as a `sqlite_utils.Database` (imported on first use: it is slow)."""
        import sqlite_utils

        return sqlite_utils.Database(self._conn)

    # -- transactions ---------------------------------------------------------------------
    def _retry(self, fn: Callable[[], T]) -> T:
        delay, deadline = 0.01, time.monotonic() + BUSY_PATIENCE_S
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _write(self, fn: Callable[[], T], cleanup: Callable[[], None] | None = None) -> T:
        """Run `fn` in one write transaction, retried with backoff while the db is busy."""
        with self._lock:
            delay, deadline = 0.005, time.monotonic() + BUSY_PATIENCE_S
            while True:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = fn()
                        self._conn.execute("COMMIT")
                    except BaseException:
                        if self._conn.in_transaction:
                            self._conn.execute("ROLLBACK")
                        if cleanup is not None:
                            cleanup()
                        raise
                except sqlite3.DatabaseError as exc:
                    busy = isinstance(exc, sqlite3.OperationalError) and _busy(exc)
                    if not busy or time.monotonic() > deadline:
                        raise StoreError(_failure(self.path, exc)) from exc
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                self._changes += 1
                return result

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._retry(lambda: self._conn.execute(sql, params).fetchall())
            except sqlite3.DatabaseError as exc:
                raise StoreError(_failure(self.path, exc)) from exc

    # -- writing (front ends only) --------------------------------------------------------
    def create_run(
        self,
        config: dict[str, Any] | Any,
        name: str | None = None,
        sweep: str | None = None,
        status: str = "queued",
    ) -> RunRow:
        """Allocate a handle (run1, run2, ... or `name`), create runs/<name>/ with config.json."""
        values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        if name is not None:
            check_run_name(name)
        if status not in STATUSES:
            raise RunError(f"Unknown status '{status}'; use one of {', '.join(STATUSES)}.")
        made: list[Path] = []

        def cleanup() -> None:
            for directory in made:
                shutil.rmtree(directory, ignore_errors=True)
            made.clear()

        def create() -> str:
            now = time.time()
            new_id = int(
                self._conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM runs").fetchone()[0]
            )
            if name is not None:
                chosen = name
                if self._conn.execute("SELECT 1 FROM runs WHERE name = ?", (chosen,)).fetchone():
                    raise RunError(f"A run named '{chosen}' already exists; choose another --name.")
                if run_dir(self.home, chosen).exists():
                    raise RunError(
                        f"The directory {run_dir(self.home, chosen)} already exists but is not in "
                        "runs.db; choose another --name, or run `rhea db rebuild` to bring it back."
                    )
            else:
                number = new_id
                while True:
                    chosen = f"run{number}"
                    taken = self._conn.execute(
                        "SELECT 1 FROM runs WHERE name = ?", (chosen,)
                    ).fetchone()
                    if not taken and not run_dir(self.home, chosen).exists():
                        break
                    number += 1
            if sweep is not None:
                self._conn.execute(
                    "INSERT OR IGNORE INTO sweeps (name, created, spec) VALUES (?, ?, '{}')",
                    (sweep, now),
                )
            directory = run_dir(self.home, chosen)
            directory.mkdir(parents=True)
            made.append(directory)
            meta = {
                "id": new_id,
                "name": chosen,
                "sweep": sweep,
                "created": now,
                "status": status,
                "home": str(self.home),
            }
            write_config(directory, values, meta)
            self._conn.execute(
                "INSERT INTO runs (id, name, sweep, status, created, config, events_offset) "
                "VALUES (?, ?, ?, ?, ?, ?, 0)",
                (new_id, chosen, sweep, status, now, json.dumps(values)),
            )
            return chosen

        chosen = self._write(create, cleanup)
        return self.get_run(chosen)

    def create_sweep(self, name: str, spec: dict[str, Any]) -> None:
        """Record a sweep (also as sweeps/<name>.json, so a rebuild keeps it)."""
        check_run_name(name)
        now = time.time()
        text = json.dumps(spec, sort_keys=True)

        def create() -> None:
            if self._conn.execute("SELECT 1 FROM sweeps WHERE name = ?", (name,)).fetchone():
                raise RunError(f"A sweep named '{name}' already exists; choose another --name.")
            self._conn.execute(
                "INSERT INTO sweeps (name, created, spec) VALUES (?, ?, ?)", (name, now, text)
            )
            folder = self.home / SWEEPS_DIR
            folder.mkdir(exist_ok=True)
            _write_json(folder / f"{name}.json", {"name": name, "created": now, "spec": spec})

        self._write(create)

    def set_status(
        self, handle: str, status: str, error: str | None = None, **columns: Any
    ) -> None:
        """Set a run's status from a front end (pruned, lost, ...); later worker events win."""
        if status not in STATUSES:
            raise RunError(f"Unknown status '{status}'; use one of {', '.join(STATUSES)}.")
        row = self.get_run(handle)
        now = time.time()
        values = {"status": status, "error": error, "status_set_at": now, **columns}
        if status in FINAL_STATUSES:
            values.setdefault("ended", now)
        else:
            values.setdefault("ended", None)
            values.setdefault("traceback", None)
        self._update(row.id, values, check=set(columns))
        if row.path is not None and row.path.is_dir():
            _write_json(
                row.path / STATUS_FILE,
                {"status": status, "t": now, "error": error, "traceback": columns.get("traceback")},
            )

    def update_run(self, handle: str, **columns: Any) -> None:
        """Set columns (pid, host, slurm_job_id, ...) without touching the status."""
        self._update(self.get_run(handle).id, columns, check=set(columns))

    def _update(self, run_id: int, values: dict[str, Any], check: set[str]) -> None:
        bad = check - _SETTABLE
        if bad:
            raise StoreError(f"Cannot set run column(s) {', '.join(sorted(bad))}.")
        if "data" in values and not isinstance(values["data"], str):
            values["data"] = json.dumps(values["data"])
        if "git_dirty" in values and values["git_dirty"] is not None:
            values["git_dirty"] = int(bool(values["git_dirty"]))
        # column names come from the fixed RUN_COLUMNS whitelist, values are parameters
        assignments = ", ".join(f"{column} = ?" for column in values)
        self._write(
            lambda: self._conn.execute(
                f"UPDATE runs SET {assignments} WHERE id = ?",
                (*values.values(), run_id),  # noqa: S608
            )
        )

    def delete_run(self, handle: str, force: bool = False) -> None:
        """Remove a run's rows and its directory; refuses a live run unless `force`."""
        row = self.get_run(handle)
        live = row.status == "running" or (row.status == "queued" and (row.pid or row.slurm_job_id))
        if not force and live and lifecycle.process_alive(row) is not False:
            raise RunError(
                f"Run '{row.name}' is {row.status}; stop it first with `rhea stop {row.name}`."
            )
        directory = run_dir(self.home, row.name)
        trash = self.runs_root / f".deleting-{row.name}-{os.getpid()}"
        moved = False
        if directory.exists():
            os.replace(directory, trash)
            moved = True

        def delete() -> None:
            for table in ("metrics", "checkpoints", "evaluations"):
                self._conn.execute(f"DELETE FROM {table} WHERE run = ?", (row.id,))  # noqa: S608
            self._conn.execute("DELETE FROM runs WHERE id = ?", (row.id,))

        def restore() -> None:
            if moved and not directory.exists():
                os.replace(trash, directory)

        self._write(delete, restore)
        if moved:
            shutil.rmtree(trash, ignore_errors=True)

    # -- ingestion ------------------------------------------------------------------------
    def ingest(self, handles: list[str] | None = None) -> int:
        """Ingest new events of all (or the given) runs; returns the number of events applied.

        Also settles runs whose worker is gone without a final status (lost, see lifecycle).
        """
        if handles is None:
            rows = self._query(f"SELECT {_SLIM} FROM runs")  # noqa: S608
        else:
            ids = [r.id for r in self.resolve_handles(handles)]
            marks = ",".join("?" * len(ids))
            rows = (
                self._query(f"SELECT {_SLIM} FROM runs WHERE id IN ({marks})", ids) if ids else []
            )  # noqa: S608
        applied = 0
        for row in rows:
            applied += self._refresh(row)
        if any(row[6] for row in rows):
            # Slurm's own verdicts (CANCELLED, TIMEOUT, ...) after the workers' events;
            # one batched, rate-limited scheduler query for all jobs.
            refresh = lifecycle.slurm_hook("refresh_slurm_statuses")
            if refresh is not None:
                applied += refresh(self)
        return applied

    def _refresh(self, row: tuple[Any, ...]) -> int:
        """Ingest one run's new events and settle it if its worker is gone."""
        # Liveness is checked before the events are read: a worker that wrote its final
        # status and exited in between is then seen with that status, never as lost.
        watched = row[2] in ACTIVE_STATUSES and bool(row[4] or row[6])
        gone = lifecycle.process_alive(brief_row(row)) is False if watched else None
        applied = self._ingest_file(row[0], row[1], row[3])
        if not watched and applied:
            again = self._query(f"SELECT {_SLIM} FROM runs WHERE id = ?", (row[0],))  # noqa: S608
            if again and again[0][2] in ACTIVE_STATUSES and (again[0][4] or again[0][6]):
                watched = True  # the start event just told us the pid: check, then re-read
                gone = lifecycle.process_alive(brief_row(again[0])) is False
                applied += self._ingest_file(row[0], row[1], again[0][3])
        if watched:
            self._settle(row[0], gone)
        return applied

    def _ingest_file(self, run_id: int, name: str, offset: int) -> int:
        events_path = self.runs_root / name / EVENTS_FILE
        try:
            size = events_path.stat().st_size
        except OSError:
            return 0  # no events yet (or the directory is gone)
        if size == offset:
            return 0
        # read outside the write lock; a torn last line alone starts no transaction
        start = 0 if size < offset else offset  # a replaced file is read whole (upserts)
        chunk = read_events(events_path, start)
        if chunk.end_offset == offset:
            return 0
        return self._write(lambda: self._ingest_run(run_id, start, chunk))

    def _ingest_run(self, run_id: int, start: int, chunk: EventChunk) -> int:
        self._conn.row_factory = sqlite3.Row
        try:
            found = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        finally:
            self._conn.row_factory = None
        if found is None:
            return 0  # deleted meanwhile
        run = dict(found)
        if run["events_offset"] != start and not (
            start == 0 and chunk.end_offset < run["events_offset"]
        ):
            # another front end ingested meanwhile: continue from its offset, under the lock
            chunk = read_events(self.runs_root / run["name"] / EVENTS_FILE, run["events_offset"])
        if chunk.end_offset == run["events_offset"]:
            return 0
        changes = apply_events(self._conn, run, chunk.events)
        changes["events_offset"] = chunk.end_offset
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self._conn.execute(
            f"UPDATE runs SET {assignments} WHERE id = ?",  # noqa: S608
            (*changes.values(), run_id),
        )
        return len(chunk.events)

    def _settle(self, run_id: int, gone: bool | None) -> None:
        """Mark a run whose worker is gone without a final status as lost (or failed)."""
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return
        row = self._row(rows[0])
        verdict = lifecycle.verdict(row, gone)
        if verdict is None:
            return
        status, error, traceback = verdict

        def settle() -> None:
            current = self._conn.execute(
                "SELECT status, heartbeat FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if current is None or current[0] != row.status or current[1] != row.heartbeat:
                return  # something new arrived meanwhile; decide on the next pass
            self._conn.execute(
                "UPDATE runs SET status = ?, error = ?, traceback = ?, ended = ?, status_set_at = ? "
                "WHERE id = ?",
                (status, error, traceback, time.time(), time.time(), run_id),
            )

        self._write(settle)
        if row.path is not None and row.path.is_dir():
            _write_json(
                row.path / STATUS_FILE,
                {"status": status, "t": time.time(), "error": error, "traceback": traceback},
            )

    # -- reading --------------------------------------------------------------------------
    def _row(self, raw: tuple[Any, ...], names: list[str] | None = None) -> RunRow:
        values = dict(zip(names or self._columns(), raw, strict=False))
        return row_from(values, self.runs_root)

    def _columns(self) -> list[str]:
        if not hasattr(self, "_column_names"):
            with self._lock:
                cursor = self._conn.execute("SELECT * FROM runs LIMIT 0")
                self._column_names = [d[0] for d in cursor.description]
        return self._column_names

    def _find(self, handle: str) -> RunRow | None:
        rows = self._query("SELECT * FROM runs WHERE name = ?", (handle,))
        if not rows and handle.isdigit():
            rows = self._query("SELECT * FROM runs WHERE id = ?", (int(handle),))
        return self._row(rows[0]) if rows else None

    def get_run(self, handle: str) -> RunRow:
        """By name (or numeric id); UnknownRunError with the known handles otherwise."""
        row = self._find(str(handle))
        if row is None:
            raise UnknownRunError(self._unknown_message(str(handle)))
        row.evaluation = {
            name: (math.nan if value is None else value)
            for name, value in self._query(
                "SELECT name, value FROM evaluations WHERE run = ?", (row.id,)
            )
        }
        row.checkpoints = [
            {"epoch": epoch, "path": path, "kind": kind, "t": t}
            for path, epoch, kind, t in self._query(
                "SELECT path, epoch, kind, t FROM checkpoints WHERE run = ? ORDER BY epoch, t",
                (row.id,),
            )
        ]
        return row

    def _unknown_message(self, handle: str) -> str:
        names = [r[0] for r in self._query("SELECT name FROM runs ORDER BY id DESC LIMIT 6")]
        count = self._query("SELECT COUNT(*) FROM runs")[0][0]
        if not names:
            return f"There is no run '{handle}': the Rhea home {self.home} has no runs yet."
        more = f" ({count} in all; `rhea ls` lists them)" if count > len(names) else ""
        return (
            f"There is no run '{handle}' in {self.home}. Known runs: "
            f"{', '.join(reversed(names))}{more}."
        )

    def list_runs(
        self,
        sweep: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        descending: bool = False,
    ) -> list[RunRow]:
        """Runs (without evaluations and checkpoints), filtered and sorted by a summary column."""
        clauses, params = [], []
        if sweep is not None:
            clauses.append("sweep = ?")
            params.append(sweep)
        if status is not None:
            if status not in STATUSES:
                raise RunError(f"Unknown status '{status}'; use one of {', '.join(STATUSES)}.")
            clauses.append("status = ?")
            params.append(status)
        column = "id"
        if sort is not None:
            if sort not in SORT_KEYS:
                raise RunError(f"Cannot sort by '{sort}'; use one of {', '.join(SORT_KEYS)}.")
            column = SORT_KEYS[sort]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = f"{column} IS NULL, {column} {'DESC' if descending else 'ASC'}, id"
        return [
            self._row(r)
            for r in self._query(f"SELECT * FROM runs {where} ORDER BY {order}", params)
        ]  # noqa: S608

    def resolve_handles(self, handles: list[str]) -> list[RunRow]:
        """Expand `sweep:NAME` and run handles into rows, in order, without duplicates."""
        out: dict[int, RunRow] = {}
        for handle in handles:
            if handle.startswith("sweep:"):
                name = handle[len("sweep:") :]
                if not self._query("SELECT 1 FROM sweeps WHERE name = ?", (name,)):
                    known = [r[0] for r in self._query("SELECT name FROM sweeps ORDER BY created")]
                    raise UnknownRunError(
                        f"There is no sweep '{name}' in {self.home}. Known sweeps: "
                        f"{', '.join(known) if known else 'none'}."
                    )
                for row in self.list_runs(sweep=name):
                    out.setdefault(row.id, row)
            else:
                row = self.get_run(handle)
                out.setdefault(row.id, row)
        return list(out.values())

    def _run_id(self, handle: str) -> int:
        rows = self._query("SELECT id FROM runs WHERE name = ?", (handle,))
        if not rows and str(handle).isdigit():
            rows = self._query("SELECT id FROM runs WHERE id = ?", (int(handle),))
        if not rows:
            raise UnknownRunError(self._unknown_message(handle))
        return int(rows[0][0])

    def metrics(
        self, handle: str, names: list[str] | None = None, since_epoch: int = 0
    ) -> dict[str, list[tuple[int, float]]]:
        """Per-epoch series {metric name: [(epoch, value), ...]} sorted by epoch."""
        run_id = self._run_id(handle)
        sql = "SELECT name, epoch, value FROM metrics WHERE run = ?"
        params: list[Any] = [run_id]
        if names is not None:
            if not names:
                return {}
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += list(names)
        if since_epoch:
            sql += " AND epoch >= ?"
            params.append(since_epoch)
        rows = self._query(sql + " ORDER BY name, epoch", params)
        nan = math.nan
        return {
            name: [(epoch, nan if value is None else value) for _, epoch, value in group]
            for name, group in itertools.groupby(rows, key=lambda r: r[0])
        }

    def metric_names(self, handle: str) -> list[str]:
        run_id = self._run_id(handle)
        return [
            r[0]
            for r in self._query(
                "SELECT DISTINCT name FROM metrics WHERE run = ? ORDER BY name", (run_id,)
            )
        ]

    def sweeps(self) -> list[dict[str, Any]]:
        """Sweeps with their spec and a count of their runs per status."""
        counts: dict[str, dict[str, int]] = {}
        for sweep, status, count in self._query(
            "SELECT sweep, status, COUNT(*) FROM runs WHERE sweep IS NOT NULL GROUP BY sweep, status"
        ):
            counts.setdefault(sweep, {})[status] = count
        return [
            {
                "name": name,
                "created": created,
                "spec": json.loads(spec or "{}"),
                "runs": sum(counts.get(name, {}).values()),
                "statuses": counts.get(name, {}),
            }
            for name, created, spec in self._query(
                "SELECT name, created, spec FROM sweeps ORDER BY created"
            )
        ]

    def data_version(self) -> int:
        """A number that changes whenever anything was ingested or written (cheap poll)."""
        with self._lock:
            other = self._conn.execute("PRAGMA data_version").fetchone()[0]
            return int(other) + self._changes

    # -- rebuild --------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Recreate every row from the run directories in one transaction; returns the run count."""
        from rhea_engine.runs.rebuild import rebuild_rows

        count = self._write(lambda: rebuild_rows(self._conn, self.home))
        self.ingest()
        return count

    def close(self) -> None:
        with self._lock:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2))
    os.replace(tmp, path)


__all__ = ["FINAL_STATUSES", "SORT_KEYS", "STATUSES", "RunRow", "Store", "read_config"]

"""runs.db, the SQL repository of a Rhea home: transactions, queries, and rows by column name.

The front ends own runs.db; workers never open it. `rhea_engine.runs.refresh` brings it up to
date with the run directories (events, liveness, Slurm) before the front ends read it, and
`Store.rebuild()` recreates it from them. SQLite settings: WAL, synchronous=NORMAL, and one
retry policy: SQLite's busy timeout, which makes a writer wait for another (a second front
end, or a slow network file system) instead of failing.

One Store is used by one thread at a time; a single lock makes it safe to hand from the
thread that made it to a worker thread (the TUI polls on one).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rhea_engine.errors import RunError, StoreError, UnknownRunError
from rhea_engine.runs import rows, rundir
from rhea_engine.runs import tags as tagging
from rhea_engine.runs.ingest import apply_chunk, apply_verdict
from rhea_engine.runs.rows import SORT_KEYS, IngestState, RunRow, row_from
from rhea_engine.runs.schema import RUN_COLUMNS, VERSION, applied_version, migrate
from rhea_engine.runs.where_sql import Condition, compile_filter
from rhea_engine.vocabulary import FINAL_STATUSES, MISSING, STATUSES

DB_FILE = "runs.db"
BUSY_TIMEOUT_S = 120.0  # how long a write waits for another writer before it gives up
_SETTABLE = set(RUN_COLUMNS) - {"id", "name", "config", "events_offset", "status_set_at"}


def _check_status(status: str) -> None:
    if status not in STATUSES or status == MISSING:
        known = ", ".join(s for s in STATUSES if s != MISSING)
        raise RunError(f"Unknown status '{status}'; use one of {known}.")


class Store:
    """runs.db under `home`; every method is one transaction or one consistent read."""

    @classmethod
    def open_existing(cls, home: str | Path) -> Store:
        """The store of an existing Rhea home; StoreError rather than creating one elsewhere."""
        path = Path(home)
        if not path.is_dir():
            raise StoreError(f"The Rhea home {path} does not exist; give --home or set RHEA_HOME.")
        if not (path / DB_FILE).exists() and not (path / rundir.RUNS_DIR).is_dir():
            raise StoreError(
                f"{path} is not a Rhea home yet (no runs.db or runs/); start a run there with "
                "`rhea run`, or give --home or set RHEA_HOME."
            )
        return cls(path)

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home).expanduser().resolve()
        self.runs_root = self.home / rundir.RUNS_DIR
        self.path = self.home / DB_FILE
        self.runs_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._changes = 0
        self._conn: sqlite3.Connection | None = None
        fresh = not self.path.exists()
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn = conn
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")  # KiB: per-run series stay cached
            if applied_version(conn) < VERSION:
                with self._transaction():
                    migrate(self.db)
        except (sqlite3.DatabaseError, StoreError) as exc:
            self.close()
            raise StoreError(
                f"The run store {self.path} cannot be opened ({exc}). If it is damaged, move it "
                "aside and run `rhea db rebuild` to recreate it from the run directories."
            ) from exc
        if fresh and any(
            p.is_dir() and not p.name.startswith(".") for p in self.runs_root.iterdir()
        ):
            self.rebuild()  # runs.db was deleted or lost: the run directories hold it all

    @property
    def db(self) -> Any:
        """The connection as a `sqlite_utils.Database` (imported on first use: it is slow)."""
        import sqlite_utils

        return sqlite_utils.Database(self._conn)

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: it waits for other writers up front)."""
        with self._lock, self._errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._changes += 1

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._connection()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"The run store {self.path} failed ({exc}). If another program holds it for "
                "long, try again; if it is damaged, `rhea db rebuild` recreates it from the run "
                "directories."
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"The run store {self.path} is closed.")
        return self._conn

    # -- runs and sweeps, written by front ends -------------------------------------------
    def create_run(
        self,
        config: dict[str, Any] | Any,
        name: str | None = None,
        sweep: str | None = None,
        status: str = "queued",
        tags: list[str] | tuple[str, ...] = (),
    ) -> RunRow:
        """Allocate a handle (`name`, or the next free runN), create runs/<name>/ with config.json.

        The run gets `tags` and, in a sweep, the sweep's tags (`create_sweep`).
        """
        values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        if name is not None:
            rundir.check_run_name(name)
        _check_status(status)
        wanted = {rundir.check_tag(tag) for tag in tags}
        made: list[Path] = []
        try:
            with self._transaction() as conn:
                chosen = name if name is not None else rows.free_name(conn, self.runs_root)
                if conn.execute("SELECT 1 FROM runs WHERE name = ?", (chosen,)).fetchone():
                    raise RunError(f"A run named '{chosen}' already exists; choose another --name.")
                now = time.time()
                new_id = int(
                    conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM runs").fetchone()[0]
                )
                if sweep is not None:
                    conn.execute(
                        "INSERT OR IGNORE INTO sweeps (name, created, spec) VALUES (?, ?, '{}')",
                        (sweep, now),
                    )
                    wanted |= set(tagging.sweep_tags(conn, sweep))
                meta = {"id": new_id, "name": chosen, "sweep": sweep, "created": now}
                meta.update(status=status, home=str(self.home))
                made.append(rundir.create_run_dir(self.home, chosen, values, meta))
                conn.execute(
                    "INSERT INTO runs (id, name, sweep, status, created, config, events_offset) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (new_id, chosen, sweep, status, now, json.dumps(values)),
                )
                if wanted:
                    tagging.set_tags(conn, new_id, made[-1], add=wanted)
        except BaseException:
            for directory in made:
                rundir.remove_dir(directory)
            raise
        return self.get_run(chosen)

    def create_sweep(
        self, name: str, spec: dict[str, Any], tags: list[str] | tuple[str, ...] = ()
    ) -> None:
        """Record a sweep (also as sweeps/<name>.json, so a rebuild keeps it).

        `tags` go into the spec; every run created in the sweep gets them.
        """
        rundir.check_run_name(name)
        if tags:
            spec = {**spec, "tags": sorted({rundir.check_tag(tag) for tag in tags})}
        now = time.time()
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM sweeps WHERE name = ?", (name,)).fetchone():
                raise RunError(f"A sweep named '{name}' already exists; choose another --name.")
            conn.execute(
                "INSERT INTO sweeps (name, created, spec) VALUES (?, ?, ?)",
                (name, now, json.dumps(spec, sort_keys=True)),
            )
            rundir.write_sweep(self.home, name, now, spec)

    def delete_sweep(self, name: str) -> None:
        """Forget a sweep that has no runs left (and its sweeps/<name>.json): the name is free."""
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE sweep = ? LIMIT 1", (name,)).fetchone():
                raise RunError(f"Sweep '{name}' still has runs; delete them first.")
            conn.execute("DELETE FROM sweeps WHERE name = ?", (name,))
            rundir.remove_sweep(self.home, name)

    def set_status(
        self, handle: str, status: str, error: str | None = None, **columns: Any
    ) -> None:
        """Set a run's status from a front end (pruned, lost, ...); later worker events win."""
        _check_status(status)
        row = self.get_run(handle)
        now = time.time()
        values = {"status": status, "error": error, "status_set_at": now, **columns}
        if status in FINAL_STATUSES:
            values.setdefault("ended", now)
        else:
            values.setdefault("ended", None)
            values.setdefault("traceback", None)
        self._update(row.id, values, check=set(columns))
        if row.path is not None:
            rundir.write_status(row.path, status, error, columns.get("traceback"))

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
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE runs SET {assignments} WHERE id = ?",  # noqa: S608
                (*values.values(), run_id),
            )

    def tag(self, handle: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
        """Add and remove tags of a run (in runs.db and its tags.json); returns its tags."""
        added = {rundir.check_tag(tag) for tag in add}
        row = self.get_run(handle)
        with self._transaction() as conn:
            path = row.path if row.path is not None and row.path.is_dir() else None
            return tagging.set_tags(conn, row.id, path, added, set(remove))

    def delete_run(self, handle: str, force: bool = False) -> None:
        """Remove a run's rows and its directory.

        Refuses a run that may still have a worker (active, with a pid or a Slurm job, as
        the last refresh saw it) unless `force`.
        """
        row = self.get_run(handle)
        if row.may_have_worker and not force:
            raise RunError(
                f"Run '{row.name}' is {row.status}; stop it first with `rhea stop {row.name}`."
            )
        with rundir.removing(rundir.run_dir(self.home, row.name)), self._transaction() as conn:
            for table in ("metrics", "checkpoints", "evaluations", "tags"):
                conn.execute(f"DELETE FROM {table} WHERE run = ?", (row.id,))  # noqa: S608
            conn.execute("DELETE FROM runs WHERE id = ?", (row.id,))

    # -- ingestion and settling (called by rhea_engine.runs.refresh) ----------------------
    def ingest_states(self, handles: list[str] | None = None) -> list[IngestState]:
        """Where ingestion stands for all (or the given) runs."""
        ids = None if handles is None else [r.id for r in self.resolve_handles(handles)]
        if ids == []:
            return []
        sql = f"SELECT {IngestState.COLUMNS} FROM runs"  # noqa: S608
        if ids is not None:
            sql += f" WHERE id IN ({','.join('?' * len(ids))})"
        with self._reading() as conn:
            return [IngestState.from_row(r) for r in conn.execute(sql, ids or ())]

    def ingest_state(self, run_id: int) -> IngestState | None:
        sql = f"SELECT {IngestState.COLUMNS} FROM runs WHERE id = ?"  # noqa: S608
        with self._reading() as conn:
            found = conn.execute(sql, (run_id,)).fetchone()
        return IngestState.from_row(found) if found else None

    def apply_events(self, run_id: int, offset: int, chunk: rundir.EventChunk) -> int | None:
        """Apply a run's events read from byte `offset`, in one transaction (`apply_chunk`)."""
        with self._transaction() as conn:
            return apply_chunk(conn, run_id, offset, chunk)

    def settle(self, row: RunRow, status: str, error: str, traceback: str | None) -> bool:
        """Give a run whose worker is gone its verdict (`ingest.apply_verdict`)."""
        with self._transaction() as conn:
            return apply_verdict(conn, row, status, error, traceback)

    def run_names(self) -> set[str]:
        """The names of all runs in runs.db."""
        with self._reading() as conn:
            return {r["name"] for r in conn.execute("SELECT name FROM runs")}

    def adopt_run_dirs(self, names: list[str]) -> list[str]:
        """Rows for run directories made without a front end, in one transaction."""
        from rhea_engine.runs.rebuild import adopt_run_dirs

        with self._transaction() as conn:
            return adopt_run_dirs(conn, self.home, names)

    # -- reading (the queries themselves are in `rows`) -----------------------------------
    def get_run(self, handle: str) -> RunRow:
        """By name (or numeric id), with its evaluation and checkpoints; UnknownRunError else."""
        handle = str(handle)
        with self._reading() as conn:
            found = rows.find(conn, handle)
            if found is None:
                raise UnknownRunError(rows.unknown_run_message(conn, self.home, handle))
            return rows.with_details(conn, row_from(found, self.runs_root))

    def run_by_id(self, run_id: int) -> RunRow | None:
        """The summary row (no evaluation or checkpoints) of the run with id `run_id`."""
        with self._reading() as conn:
            found = conn.execute(f"{rows.RUN_SELECT} WHERE runs.id = ?", (run_id,)).fetchone()
        return row_from(found, self.runs_root) if found else None

    def list_runs(
        self,
        sweep: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        where: str | None = None,
    ) -> list[RunRow]:
        """Runs (without evaluations and checkpoints), filtered and sorted by a summary column.

        `where` is a filter expression (`where_sql`); FilterError when it is malformed.
        """
        if status is not None and status not in STATUSES:
            raise RunError(f"Unknown status '{status}'; use one of {', '.join(STATUSES)}.")
        if sort is not None and sort not in SORT_KEYS:
            raise RunError(f"Cannot sort by '{sort}'; use one of {', '.join(SORT_KEYS)}.")
        with self._reading() as conn:
            condition = None if where is None else self._condition(conn, where)
            found = rows.select(conn, sweep, status, sort, descending, condition)
        listed = [row_from(r, self.runs_root) for r in found]
        return listed if status is None else [r for r in listed if r.status == status]

    def run_ids(self, where: str) -> set[int]:
        """Ids of the runs that match a filter expression (FilterError when malformed)."""
        with self._reading() as conn:
            found = rows.select(conn, None, None, None, False, self._condition(conn, where))
        return {row["id"] for row in found}

    def _condition(self, conn: sqlite3.Connection, where: str) -> Condition:
        return compile_filter(where, lambda: rows.config_keys(conn))

    def resolve_handles(self, handles: list[str], where: str | None = None) -> list[RunRow]:
        """Expand `sweep:NAME` and run handles into rows, in order, without duplicates; with
        `where`, only the runs that match it (all runs that do when `handles` is empty)."""
        # a malformed filter is reported before unknown handles
        matching = None if where is None else self.list_runs(where=where)
        if matching is not None and not handles:
            return matching
        out: dict[int, RunRow] = {}
        for handle in handles:
            if handle.startswith("sweep:"):
                name = handle[len("sweep:") :]
                self._check_sweep(name)
                for row in self.list_runs(sweep=name):
                    out.setdefault(row.id, row)
            else:
                row = self.get_run(handle)
                out.setdefault(row.id, row)
        if matching is None:
            return list(out.values())
        ids = {row.id for row in matching}
        return [row for row in out.values() if row.id in ids]

    def _check_sweep(self, name: str) -> None:
        with self._reading() as conn:
            if conn.execute("SELECT 1 FROM sweeps WHERE name = ?", (name,)).fetchone():
                return
            known = [r["name"] for r in conn.execute("SELECT name FROM sweeps ORDER BY created")]
        raise UnknownRunError(
            f"There is no sweep '{name}' in {self.home}. Known sweeps: "
            f"{', '.join(known) if known else 'none'}."
        )

    def _run_id(self, conn: sqlite3.Connection, handle: str) -> int:
        found = rows.find(conn, str(handle))
        if found is None:
            raise UnknownRunError(rows.unknown_run_message(conn, self.home, str(handle)))
        return int(found["id"])

    def metrics(
        self, handle: str, names: list[str] | None = None, since_epoch: int = 0
    ) -> dict[str, list[tuple[int, float]]]:
        """Per-epoch series {metric name: [(epoch, value), ...]} sorted by epoch."""
        with self._reading() as conn:
            return rows.series(conn, self._run_id(conn, handle), names, since_epoch)

    def metric_names(self, handle: str) -> list[str]:
        with self._reading() as conn:
            run_id = self._run_id(conn, handle)
            found = conn.execute(
                "SELECT DISTINCT name FROM metrics WHERE run = ? ORDER BY name", (run_id,)
            ).fetchall()
        return [r["name"] for r in found]

    def sweeps(self) -> list[dict[str, Any]]:
        """Sweeps with their spec and a count of their runs per status."""
        with self._reading() as conn:
            return rows.sweeps(conn)

    def data_version(self) -> int:
        """A number that changes whenever anything was ingested or written (cheap poll)."""
        with self._reading() as conn:
            other = conn.execute("PRAGMA data_version").fetchone()[0]
        return int(other) + self._changes

    # -- rebuild --------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Recreate every row from the run directories in one transaction; returns the run count.

        Workers that are gone are settled by the next refresh, as after any other change.
        """
        from rhea_engine.runs.rebuild import rebuild_rows

        try:
            with self._transaction() as conn:
                return rebuild_rows(conn, self.home)
        except OSError as exc:
            raise StoreError(f"Rebuilding {self.path} failed: {exc}.") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["FINAL_STATUSES", "SORT_KEYS", "STATUSES", "RunRow", "Store"]

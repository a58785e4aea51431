"""Bring runs.db up to date with the run directories: ingest events, settle, ask Slurm.

Front ends call `refresh(store)` (or `refresh(store, [handle])`) before they read. For each
run it reads the new lines of events.jsonl from the recorded byte offset and applies them
in one transaction (idempotent: the offset moves with the rows it covers); settles a run
whose worker is gone without a final status (lost or failed, see `lifecycle`); and applies
Slurm's verdicts on Slurm runs (CANCELLED, TIMEOUT, ...) after the workers' own events.
First it adds the rows of run directories that a script made (`rhea_engine.tracking`).
"""

from __future__ import annotations

import os
import time
import weakref

from rhea_engine.runs import lifecycle, rundir
from rhea_engine.runs.rows import IngestState
from rhea_engine.runs.store import Store

# per store: the mtime of runs/ when every directory in it was a known run
_LISTED: weakref.WeakKeyDictionary[Store, float] = weakref.WeakKeyDictionary()


def refresh(store: Store, handles: list[str] | None = None) -> int:
    """Refresh all (or the given) runs; returns the number of events and verdicts applied."""
    adopt_new_runs(store)
    states = store.ingest_states(handles)
    applied = sum(_refresh_run(store, state) for state in states)
    if any(state.slurm_job_id for state in states):
        from rhea_engine.runs import slurm  # submitit loads only where Slurm runs exist

        applied += slurm.refresh_slurm_statuses(store)
    return applied


def adopt_new_runs(store: Store) -> int:
    """Add the run directories that are not in runs.db yet; returns how many were added.

    The listing of runs/ is skipped while the folder's mtime is what it was when every
    entry was a known run, unless that mtime is recent: a directory made within the file
    system's timestamp granularity of the last look would not have changed it.
    """
    try:
        stamp = store.runs_root.stat().st_mtime
    except OSError:
        return 0
    if _LISTED.get(store) == stamp and time.time() - stamp > 2.0:
        return 0
    names = {e.name for e in os.scandir(store.runs_root) if e.is_dir() and e.name[0] != "."}
    new = sorted(names - store.run_names())
    ready = [name for name in new if (store.runs_root / name / rundir.CONFIG_FILE).is_file()]
    adopted = store.adopt_run_dirs(ready) if ready else []
    if len(ready) == len(new):  # else some have no config.json yet: look again next time
        _LISTED[store] = stamp
    return len(adopted)


def _refresh_run(store: Store, state: IngestState) -> int:
    """Ingest one run's new events and settle it if its worker is gone."""
    # Liveness is checked before the events are read: a worker that wrote its final
    # status and exited in between is then seen with that status, never as lost.
    watched = state.watched
    gone = _gone(store, state.id) if watched else None
    applied = _ingest(store, state)
    if not watched and applied:
        again = store.ingest_state(state.id)
        if again is not None and again.watched:
            watched = True  # the start event just told us the pid: check, then read again
            gone = _gone(store, state.id)
            applied += _ingest(store, again)
    if watched:
        applied += _settle(store, state.id, gone)
    return applied


def _gone(store: Store, run_id: int) -> bool | None:
    row = store.run_by_id(run_id)
    return None if row is None else lifecycle.process_alive(row) is False


def _ingest(store: Store, state: IngestState) -> int:
    """Apply the events past the run's offset; returns how many."""
    path = store.runs_root / state.name / rundir.EVENTS_FILE
    offset = state.events_offset
    while True:
        try:
            size = path.stat().st_size
        except OSError:
            return 0  # no events yet (or the directory is gone)
        if size == offset:
            return 0
        start = 0 if size < offset else offset  # a replaced file is read whole (upserts)
        chunk = rundir.read_events(path, start)
        if chunk.end_offset == offset:
            return 0  # a torn last line alone starts no transaction
        applied = store.apply_events(state.id, start, chunk)
        if applied is not None:
            return applied
        # another front end ingested meanwhile: continue from where it got to
        moved = store.ingest_state(state.id)
        if moved is None:
            return 0
        offset = moved.events_offset


def _settle(store: Store, run_id: int, gone: bool | None) -> int:
    """Give a run whose worker is gone without a final status its verdict; 1 if given."""
    row = store.run_by_id(run_id)
    verdict = None if row is None else lifecycle.verdict(row, gone)
    if row is None or verdict is None:
        return 0
    status, error, traceback = verdict
    if not store.settle(row, status, error, traceback):
        return 0  # something new arrived meanwhile; decide on the next pass
    if row.path is not None:
        rundir.write_status(row.path, status, error, traceback)
    return 1

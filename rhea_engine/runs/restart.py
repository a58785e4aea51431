"""Before `rhea resume`: can the run continue from a checkpoint, or must it start afresh?

A resume needs a readable checkpoint; when there is none (no checkpoint written yet, or
every file damaged) it is refused, naming the files, unless the user asks for a fresh start
(`rhea resume RUN --from-scratch`). A fresh start voids the run's history: its checkpoint
files move into checkpoints/discarded-<time>/ (kept, never mixed with the new ones) and a
`reset` event in events.jsonl drops its metrics, checkpoints and evaluation from runs.db, now
and in any later rebuild, so that `ls` and `show` never mix two histories.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rhea_engine.errors import RunError
from rhea_engine.runs import rundir
from rhea_engine.vocabulary import MISSING

if TYPE_CHECKING:  # the worker uses `check_resumable` and never opens runs.db
    from rhea_engine.runs.store import RunRow, Store


def prepare(store: Store, row: RunRow, from_scratch: bool) -> None:
    """Check that run `row` can resume (RunError if not), or void its history for a fresh start."""
    if row.status == MISSING or row.path is None:
        raise RunError(row.error or f"The directory of run '{row.name}' is gone.")
    if from_scratch:
        from rhea_engine.runs.refresh import refresh

        rundir.start_afresh(row.path, reason="rhea resume --from-scratch")
        refresh(store, [row.name])  # the reset event takes the old history out of runs.db
        return
    check_resumable(row.name, row.path)


def check_resumable(name: str, path: Path) -> Path:
    """The checkpoint run `name` would continue from; RunError naming the files if none."""
    from rhea_engine.checkpoint import scan_checkpoints  # torch: only when resuming

    latest, unreadable = scan_checkpoints(path)
    if latest is not None:
        return latest
    fresh = f"`rhea resume {name} --from-scratch`"
    if not unreadable:
        raise RunError(
            f"Run '{name}' has no checkpoint to continue from. Start it again from epoch 0 with "
            f"{fresh} (its metrics so far are dropped), or start a new run."
        )
    raise RunError(
        f"No checkpoint of run '{name}' can be read: {', '.join(str(p) for p in unreadable)} "
        "(damaged, truncated, or not written by Rhea). Nothing was started. To start it again "
        f"from epoch 0, use {fresh}: the unreadable files are kept in checkpoints/discarded-*/ "
        "and the run's metrics so far are dropped."
    )

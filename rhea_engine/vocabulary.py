"""The run vocabulary, defined once: prediction tasks, run statuses and per-epoch metric names.

Every module that names a task, a status or a metric imports it from here; front ends add
only how these look (labels, colours, number formats) in `rhea_tui.format`.
"""

from __future__ import annotations

# The six loss terms of the multi-task model (upstream loss.dat order).
TASKS = ("stability", "ndens", "fluxmag", "direction", "growthrate", "unphysical")
# Tasks with a learned log-variance under task_weighting = learned (Kendall et al. 2018);
# the unphysical penalty is a constraint, not a prediction task, and keeps its multiplier.
LEARNED_TASKS = ("stability", "ndens", "fluxmag", "direction", "growthrate")

# Run statuses. `pruned`: a sweep trial stopped early by the search. `missing`: the run's
# directory is gone (deleted outside Rhea); derived whenever a run is read, never stored, so
# the run shows its recorded status again if the directory comes back.
STATUSES = (
    "queued",
    "running",
    "completed",
    "failed",
    "diverged",
    "stopped",
    "lost",
    "pruned",
    "missing",
)
MISSING = "missing"
# A run in one of these has ended: nothing will write to it again unless it is resumed.
FINAL_STATUSES = ("completed", "failed", "diverged", "stopped", "lost", "pruned", "missing")
# A run in one of these may still have a worker (a process or a Slurm job).
ACTIVE_STATUSES = ("queued", "running")

SPLITS = ("train", "test")

# Kinds of checkpoint a run records (checkpoint events, the `checkpoints` table).
CHECKPOINT_KINDS = ("periodic", "best", "final", "stop", "upstream")

# "max ELN", the one figure every front end shows under that name: the largest ELN violation
# over all epochs of a run, of the test split (`ELN_violation_test`). A run that recorded
# only the training split's (a run imported from upstream, whose loss.dat has no test
# column) falls back to `ELN_violation`, and front ends say so. Stored at ingest in
# runs.max_eln_violation, with the metric it was taken over in runs.max_eln_metric.
MAX_ELN_METRICS = ("ELN_violation_test", "ELN_violation")


def task_metric(task: str, split: str, kind: str = "loss") -> str:
    """The per-epoch metric name of one task: `{task}_{train,test}_{loss,max}` (loss.dat)."""
    return f"{task}_{split}_{kind}"


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def is_active(status: str) -> bool:
    return status in ACTIVE_STATUSES

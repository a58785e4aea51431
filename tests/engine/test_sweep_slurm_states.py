"""Slurm job states onto Rhea statuses, and Slurm time limits (no Slurm needed)."""

from __future__ import annotations

import pytest

from rhea_engine.errors import SlurmError
from rhea_engine.runs.slurm import JobState, SlurmOptions, map_state, parse_time
from rhea_engine.runs.supervise import SweepOptions
from rhea_engine.sweep.budget import Budget


def test_parse_time() -> None:
    assert parse_time("02:00:00") == 120
    assert parse_time("00:00:30") == 1
    assert parse_time("1-00:00:00") == 1440
    assert parse_time("10:00") == 10
    assert parse_time("45") == 45
    for bad in ("soon", "00:00:00", "1:60:00", "00:10:75", "-5"):
        with pytest.raises(SlurmError):
            parse_time(bad)


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        ("PENDING", "queued", None),
        ("PENDING", "stopped", ("queued", "requeued")),  # stopped at its time limit, requeued
        ("RUNNING", "queued", ("running", None)),
        ("RUNNING", "running", None),
        ("COMPLETED", "running", None),  # no final event yet: the worker's events decide
        ("COMPLETED", "completed", None),
        ("CANCELLED", "running", ("stopped", "cancelled")),
        ("CANCELLED", "stopped", ("stopped", "cancelled")),  # the worker's stop gets the reason
        ("CANCELLED", "queued", ("stopped", "cancelled")),  # cancelled while pending
        ("CANCELLED", "completed", None),
        ("CANCELLED", "pruned", None),
        ("TIMEOUT", "running", ("stopped", "time limit")),
        ("PREEMPTED", "stopped", ("stopped", "preempted")),
        ("OUT_OF_MEMORY", "running", ("failed", "out of memory")),
        ("FAILED", "running", ("failed", "exit code 1:0")),
        ("FAILED", "diverged", None),  # the worker's own verdict (with its epoch and task) stays
        ("NODE_FAIL", "running", ("lost", "node")),
    ],
)
def test_map_state(state: str, status: str, expected: tuple[str, str | None] | None) -> None:
    got = map_state(JobState("77", state, "", "1:0", at=200.0), status, ended=100.0)
    if expected is None:
        assert got is None
        return
    assert got is not None and got[0] == expected[0]
    if expected[1] is None:
        assert got[1] is None
    else:
        assert "77" in got[1] and expected[1] in got[1]


def test_sweep_options_round_trip() -> None:
    options = SweepOptions(
        parallel=3,
        gpus=["0", "2"],
        pruning={"kind": "hyperband", "min_epochs": 2, "eta": 4},
        slurm=SlurmOptions("gpu", "01:00:00", 1, "phys"),
        budget=Budget(seconds=7200.0, epochs=None, hard=True),
    )
    assert SweepOptions.from_dict(options.to_dict()) == options
    # a sweep stored before pruners had their own names still prunes with ASHA
    old = SweepOptions.from_dict({"parallel": 2, "asha_min_epochs": 2, "asha_eta": 4})
    assert old.pruning == {"kind": "asha", "min_epochs": 2, "eta": 4}
    assert not old.budget.limited


def test_a_pending_state_seen_before_the_stop_is_not_a_requeue() -> None:
    cached = JobState("5", "PENDING", at=100.0)  # asked while the job still waited to start
    assert map_state(cached, "stopped", ended=150.0) is None
    assert map_state(JobState("5", "PENDING", at=160.0), "stopped", ended=150.0) is not None

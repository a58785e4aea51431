"""Sweeps: plans (grid, random), search, early stopping, and the one path that starts them.

`plan` expands and validates grid and random trials, `asha` decides early stops, `start`
checks a front end's request and creates the sweep; `rhea_engine.runs.supervise` launches
and watches the trials.
"""

from __future__ import annotations

from rhea_engine.sweep.asha import Asha, asha_rungs
from rhea_engine.sweep.plan import (
    RANDOM_SCALES,
    Axis,
    Range,
    SweepPlan,
    check_sweep_name,
    describe_trial,
    expand_grid,
    is_range,
    label_keys,
    next_sweep_name,
    parse_axis,
    parse_range,
    parse_sweep_values,
    plan_sweep,
    sample_random,
)

__all__ = [
    "RANDOM_SCALES",
    "Asha",
    "Axis",
    "Range",
    "SweepPlan",
    "asha_rungs",
    "check_sweep_name",
    "describe_trial",
    "expand_grid",
    "is_range",
    "label_keys",
    "next_sweep_name",
    "parse_axis",
    "parse_range",
    "parse_sweep_values",
    "plan_sweep",
    "sample_random",
]

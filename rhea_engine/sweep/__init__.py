"""Sweeps: search spaces, plans (grid, random), model-based search, budgets, and their start.

`space` holds the swept dimensions (CLI ranges and `--space` files alike), `plan` expands
grid and random searches, `search` keeps a sweep's Optuna study (samplers and pruners),
`trials` links its runs to that study, `objectives` reads what a trial achieved, `budget`
limits a sweep, `importance` tells which parameters mattered, and `start` checks a front
end's request and records the sweep; `rhea_engine.runs.supervise` launches and follows the
trials. Optuna is imported only where a sweep needs it.
"""

from __future__ import annotations

from rhea_engine.sweep.plan import (
    SweepPlan,
    check_sweep_name,
    expand_grid,
    next_sweep_name,
    plan_sweep,
    sample_random,
)
from rhea_engine.sweep.space import Dimension, parse_axis, parse_range, parse_values

__all__ = [
    "Dimension",
    "SweepPlan",
    "check_sweep_name",
    "expand_grid",
    "next_sweep_name",
    "parse_axis",
    "parse_range",
    "parse_values",
    "plan_sweep",
    "sample_random",
]

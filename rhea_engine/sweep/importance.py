"""Which swept parameters mattered: Optuna's fANOVA over a sweep's completed trials.

The trials are rebuilt from the runs (their configs and objective values), so any sweep
works, whatever searched it: grid, random, a model-based search or an imported folder.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from rhea_engine.errors import SweepError

MIN_TRIALS = 3


def _parameters(
    store: Any, sweep: str, rows: Sequence[Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """({label: Optuna distribution}, {run: {label: value}}): from the sweep's space, else
    from the parameters that differ between its runs."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from rhea_engine.compare import differing_params
    from rhea_engine.sweep.search import distribution
    from rhea_engine.sweep.trials import dims_of, sweep_entry

    dims = dims_of(sweep_entry(store, sweep).get("spec") or {})
    if dims:
        planned = {r.name: {d.label: r.config.get(d.keys[0]) for d in dims} for r in rows}
        return {d.label: distribution(d) for d in dims}, planned
    dists: dict[str, Any] = {}
    values: dict[str, dict[str, Any]] = {r.name: {} for r in rows}
    for key, per_run in differing_params({r.name: r.config for r in rows}).items():
        seen = [v for v in per_run.values() if v is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen)
        if seen and numeric and min(seen) < max(seen):
            dists[key] = FloatDistribution(float(min(seen)), float(max(seen)))
            shown: dict[str, Any] = {r: float(v) for r, v in per_run.items() if v is not None}
        elif len({repr(v) for v in seen}) > 1:
            dists[key] = CategoricalDistribution(sorted({repr(v) for v in seen}))
            shown = {run: repr(v) for run, v in per_run.items() if v is not None}
        else:
            continue
        for run, value in shown.items():
            values[run][key] = value
    return dists, values


def param_importance(
    store: Any, sweep: str, objectives: Sequence[str] | None = None, seed: int = 0
) -> dict[str, Any]:
    """{objectives, trials, importance: {objective: {param: share}}}; shares add up to 1."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    from rhea_engine.sweep.objectives import check_objectives, objective_values
    from rhea_engine.sweep.trials import objectives_of, sweep_entry

    optuna.logging.set_verbosity(logging.WARNING)
    spec = sweep_entry(store, sweep).get("spec") or {}
    names = check_objectives(objectives) if objectives else [o["name"] for o in objectives_of(spec)]
    from rhea_engine.runs.refresh import refresh

    refresh(store)
    rows = [r for r in store.list_runs(sweep=sweep) if r.status == "completed"]
    dists, values_of = _parameters(store, sweep, rows)
    if not dists:
        raise SweepError(f"Sweep '{sweep}' varies no parameter; there is no importance to tell.")
    study = optuna.create_study(directions=["minimize"] * len(names))
    for row in rows:
        found = objective_values(store, store.get_run(row.name), names, measure=False)
        values = [v for v in found if v is not None and math.isfinite(v)]
        if len(values) != len(names):
            continue
        params = values_of.get(row.name, {})
        if set(params) != set(dists) or any(v is None for v in params.values()):
            continue
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, values=values)
        )
    if len(study.trials) < MIN_TRIALS:
        raise SweepError(
            f"Sweep '{sweep}' has {len(study.trials)} completed trial(s) with every objective; "
            f"parameter importance needs at least {MIN_TRIALS}."
        )
    importance = {}
    for index, name in enumerate(names):

        def target(trial: Any, index: int = index) -> float:
            return float(trial.values[index])

        evaluator = FanovaImportanceEvaluator(seed=seed)
        importance[name] = get_param_importances(study, evaluator=evaluator, target=target)
    return {
        "sweep": sweep,
        "objectives": names,
        "trials": len(study.trials),
        "importance": importance,
    }

"""The Pareto front of a sweep: the trials no other trial beats on every objective at once.

Pure `pareto_front` over objective vectors, and `sweep_tradeoffs`, which reads a sweep's
completed trials from the store (objective values as `rhea_engine.sweep.objectives` defines
them) for `rhea compare sweep:NAME --pareto` and the TUI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rhea_engine.errors import SweepError


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b on every objective and better on one (all minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str] = ()) -> list[int]:
    """Indices of the non-dominated points, in input order; `directions` are
    "minimize" (default) or "maximize" per objective. Equal points are all kept."""
    signs = [(-1.0 if d == "maximize" else 1.0) for d in directions] or None
    scaled = [[v * (signs[i] if signs else 1.0) for i, v in enumerate(point)] for point in points]
    return [
        i
        for i, point in enumerate(scaled)
        if not any(dominates(other, point) for j, other in enumerate(scaled) if j != i)
    ]


def sweep_tradeoffs(
    store: Any, sweep: str, objectives: Sequence[str] | None = None, measure: bool = True
) -> dict[str, Any]:
    """The sweep's completed trials with their objective values, the front marked.

    `objectives` default to the sweep's own (at least two are needed; a sweep with one gets
    `test_loss` and `eln_violation`). JSON-able: {objectives, directions, trials: [{run,
    values, params, front}], front: [run, ...], left_out: [{run, status, missing}]}.
    """
    from rhea_engine.compare import differing_params
    from rhea_engine.sweep.objectives import check_objectives, objective_values
    from rhea_engine.sweep.trials import objectives_of, sweep_entry

    spec = sweep_entry(store, sweep).get("spec") or {}
    stored = objectives_of(spec)
    if objectives:
        names = check_objectives(objectives)
        directions = ["minimize"] * len(names)
    elif len(stored) >= 2:
        names = [o["name"] for o in stored]
        directions = [o["direction"] for o in stored]
    else:
        names, directions = ["test_loss", "eln_violation"], ["minimize", "minimize"]
    if len(names) < 2:
        raise SweepError("A Pareto front needs at least two objectives; give --objective twice.")
    from rhea_engine.runs.refresh import refresh

    refresh(store)
    rows = store.list_runs(sweep=sweep)
    params = differing_params({r.name: r.config for r in rows})
    trials, left_out = [], []
    for row in rows:
        values = objective_values(store, store.get_run(row.name), names, measure=measure)
        missing = [n for n, v in zip(names, values, strict=True) if v is None]
        if row.status != "completed" or missing:
            left_out.append({"run": row.name, "status": row.status, "missing": missing})
            continue
        shown = {k: v.get(row.name) for k, v in params.items()}
        trials.append({"run": row.name, "values": values, "params": shown, "front": False})
    for index in pareto_front([t["values"] for t in trials], directions):
        trials[index]["front"] = True
    front = sorted((t for t in trials if t["front"]), key=lambda t: t["values"][0])
    return {
        "sweep": sweep,
        "objectives": names,
        "directions": directions,
        "trials": trials,
        "front": [t["run"] for t in front],
        "left_out": left_out,
    }

"""Sweep objectives: what a trial is judged by, read from its run (every one is minimised).

`test_loss` is the run's lowest per-epoch test loss; every other per-epoch metric is read at
that same epoch (the `best` checkpoint's), so one trade-off point is one model. `eln_violation`
is the test ELN violation there, `params` the number of trainable parameters, `latency` the
inference time of the best model (milliseconds per LATENCY_CELLS cells on one CPU thread,
measured once when the trial ends and kept in the run directory), and `model_*` the final
evaluation's figures.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rhea_engine.errors import ConfigError
from rhea_engine.vocabulary import SPLITS, TASKS, task_metric

LATENCY_FILE = "latency.json"
LATENCY_CELLS = 1024
SPECIAL = {
    "test_loss": "lowest per-epoch test loss",
    "eln_violation": "test ELN violation at the best epoch",
    "params": "trainable parameters",
    "latency": f"ms per {LATENCY_CELLS} cells, best model, one CPU thread",
}
# upstream's Syne Tune metric is its test loss
ALIASES = {"validation_score": "test_loss", "ELN_violation_test": "eln_violation"}
_EPOCH_METRICS = {"train_loss", "ELN_violation", "learning_rate", "epoch_seconds"} | {
    task_metric(t, s, k) for t in TASKS for s in SPLITS for k in ("loss", "max")
}
_PATTERNS = (re.compile(r"weight_[a-z]+"), re.compile(r"model_[A-Za-z0-9_]+"))


def check_objectives(names: Iterable[str]) -> list[str]:
    """The objectives by their canonical names; ConfigError for an unknown or repeated one."""
    out: list[str] = []
    for raw in names:
        name = ALIASES.get(raw.strip(), raw.strip())
        known = name in SPECIAL or name in _EPOCH_METRICS
        if not known and not any(p.fullmatch(name) for p in _PATTERNS):
            raise ConfigError(
                f"Unknown objective '{raw}'. Use {', '.join(SPECIAL)}, a per-epoch metric "
                "(train_loss, ELN_violation, growthrate_test_loss, ...) or a final-evaluation "
                "figure (model_...); every objective is minimised."
            )
        if name in out:
            raise ConfigError(f"The objective '{name}' is given twice.")
        out.append(name)
    return out or ["test_loss"]


def _best_epoch(series: Sequence[tuple[int, float]]) -> int | None:
    finite = [(v, e) for e, v in series if v is not None and math.isfinite(v)]
    return min(finite)[1] if finite else None


def n_parameters(run_path: Path, config: dict[str, Any]) -> float | None:
    """The trainable parameter count: as the worker recorded it, else of the run's network."""
    from rhea_engine.runs.rundir import read_events

    for event in read_events(run_path).events:
        if event.get("type") == "start" and event.get("n_parameters") is not None:
            return float(event["n_parameters"])
    from rhea_engine.config import from_dict
    from rhea_engine.errors import ConfigError
    from rhea_engine.model import build_model

    try:
        model = build_model(from_dict(config))
    except (ConfigError, TypeError, ValueError):
        return None
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def latency_ms(run_path: Path, measure: bool = True) -> float | None:
    """The best model's inference latency, measured once and kept in LATENCY_FILE."""
    file = run_path / LATENCY_FILE
    try:
        return float(json.loads(file.read_text())["ms"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    best = run_path / "checkpoints" / "best.pt"
    if not measure or not best.is_file():
        return None
    value = measure_latency(best)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps({"ms": value, "cells": LATENCY_CELLS, "threads": 1}))
    tmp.replace(file)
    return value


def measure_latency(checkpoint: Path, repeats: int = 7) -> float:
    """Median wall time of `predict_all` on LATENCY_CELLS synthetic cells, one CPU thread."""
    import torch

    from rhea_engine.checkpoint import load_checkpoint
    from rhea_engine.data.synth import generate
    from rhea_engine.model import model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(checkpoint))
    cells = torch.as_tensor(generate(LATENCY_CELLS, seed=0).F4_initial, dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            model.predict_all(cells)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model.predict_all(cells)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * sorted(times)[len(times) // 2]


def objective_values(
    store: Any, row: Any, objectives: Sequence[str], measure: bool = True
) -> list[float | None]:
    """Each objective's value for a run (None where the run lacks it)."""
    names = [o for o in objectives if o not in ("params", "latency")]
    wanted = sorted({"test_loss", "ELN_violation_test", *names} - {"eln_violation"})
    series = store.metrics(row.name, wanted)
    epoch = _best_epoch(series.get("test_loss", []))
    at_best = {m: dict(s).get(epoch) for m, s in series.items()} if epoch is not None else {}
    out: list[float | None] = []
    for name in objectives:
        if name == "params":
            value = n_parameters(Path(row.path), row.config)
        elif name == "latency":
            value = latency_ms(Path(row.path), measure)
        elif name == "eln_violation":
            value = at_best.get("ELN_violation_test")
        elif name.startswith("model_"):
            evaluation = getattr(row, "evaluation", None) or store.get_run(row.name).evaluation
            value = evaluation.get(name)
        else:
            value = at_best.get(name)
        out.append(None if value is None or not math.isfinite(value) else float(value))
    return out

"""A sweep's trials as its search sees them: runs asked, epochs reported, results told.

The supervisor (`rhea_engine.runs.supervise`) owns the processes; this module owns the
bookkeeping between the sweep's runs and its Optuna study (`search.TrialSearch`): which run
is which trial, what each has been told, and the configs of sampled trials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rhea_engine.errors import ConfigError, SweepError
from rhea_engine.runs.rows import RunRow
from rhea_engine.sweep import objectives as objmod
from rhea_engine.sweep.plan import override_of, trial_params, validate_trial
from rhea_engine.sweep.search import MODEL_BASED, PRUNE_METRIC, TrialSearch, sweep_folder
from rhea_engine.sweep.space import Dimension, label_keys

DEFAULT_OBJECTIVES = [{"name": "test_loss", "direction": "minimize"}]


def sweep_entry(store: Any, sweep: str) -> dict[str, Any]:
    """The sweep's stored record ({name, created, spec, ...}); SweepError if unknown."""
    for entry in store.sweeps():
        if entry["name"] == sweep:
            return dict(entry)
    known = [s["name"] for s in store.sweeps()]
    raise SweepError(
        f"There is no sweep '{sweep}' in {store.home}. Known sweeps: {', '.join(known) or 'none'}."
    )


def dims_of(spec: Mapping[str, Any]) -> list[Dimension]:
    """The sweep's dimensions from its stored spec (`space`, or the older `axes`/`ranges`)."""
    from rhea_engine.sweep.space import parse_axis, parse_range

    dims: list[Dimension] = []
    for label, entry in (spec.get("space") or {}).items():
        keys = tuple(entry.get("keys") or label_keys(label))
        if entry["type"] == "choice":
            dims.append(Dimension(label, keys, "choice", values=tuple(entry["values"])))
        else:
            lower, upper = float(entry["lower"]), float(entry["upper"])
            dims.append(Dimension(label, keys, entry["type"], lower, upper))
    if dims:
        return dims
    for label, values in (spec.get("axes") or {}).items():
        dims.append(parse_axis(label, ",".join(str(v) for v in values)))
    for label, text in (spec.get("ranges") or {}).items():
        dims.append(parse_range(label, str(text)))
    return dims


def objectives_of(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    return list(spec.get("objectives") or DEFAULT_OBJECTIVES)


@dataclass
class SweepTrials:
    """The link between a sweep's runs and its study, for one supervisor."""

    store: Any
    sweep: str
    spec: dict[str, Any]
    search: TrialSearch | None = None
    dims: list[Dimension] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, store: Any, sweep: str, spec: Mapping[str, Any], pruning: Any) -> SweepTrials:
        """Open the study when the sweep samples or prunes (else no Optuna at all)."""
        spec = dict(spec)
        dims = dims_of(spec)
        trials = cls(store, sweep, spec, None, dims)
        if spec.get("search") in MODEL_BASED or pruning:
            rows = store.list_runs(sweep=sweep)
            epochs = [int(r.config.get("epochs", 1)) for r in rows]
            epochs.append(int((spec.get("base") or {}).get("epochs", 1)))
            settings = {
                "search": spec.get("search") or spec.get("kind") or "grid",
                "search_seed": spec.get("search_seed", 0),
                "trials": spec.get("trials"),
                "objectives": objectives_of(spec),
                "pruning": pruning,
                "max_epochs": max(epochs),
            }
            folder = sweep_folder(store.home, sweep)
            trials.search = TrialSearch.open(folder, sweep, settings, dims)
            names = {r.name for r in rows}
            for run in [r for r in trials.search.live_runs() if r not in names]:
                trials.search.abandon(run, "its run was never created (the front end stopped)")
        return trials

    @property
    def sampled(self) -> bool:
        return self.spec.get("search") in MODEL_BASED

    @property
    def total(self) -> int | None:
        """How many trials the sweep runs (None: until its budget is spent)."""
        value = self.spec.get("trials")
        return None if value is None else int(value)

    def more_to_ask(self, rows: Sequence[RunRow]) -> bool:
        return self.sampled and (self.total is None or len(rows) < self.total)

    # -- trials -------------------------------------------------------------------------------
    def new_run(self, rows: Sequence[RunRow]) -> RunRow:
        """Ask the sampler for a trial and create its run (queued)."""
        assert self.search is not None
        numbers = [_index(r.name, self.sweep) for r in rows]
        index = max([n for n in numbers if n is not None], default=0) + 1
        name = f"{self.sweep}-{index}"
        params = self.search.ask(name)
        override: dict[str, Any] = {}
        for dim in self.dims:
            override.update(override_of(dim, params[dim.label]))
        try:
            config = validate_trial(self.spec["base"], override, self.dims, index)
            row = self.store.create_run(config, name=name, sweep=self.sweep)
        except (ConfigError, SweepError, OSError) as exc:
            self.search.abandon(name, str(exc))
            raise
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        self.notes.append(f"{name}: asked the sampler ({shown})")
        return row

    def starting(self, row: RunRow) -> None:
        """A planned run about to start: its trial, with the values it was planned with."""
        if self.search is not None and not self.search.is_live(row.name):
            self.search.ask(row.name, trial_params(row.config, self.dims))

    def follow(self, row: RunRow, finished: bool = False) -> tuple[int, float] | None:
        """Report a trial's new epochs; (epoch, loss) where the pruner stops it."""
        if self.search is None or not self.search.is_live(row.name):
            return None
        since = self.search.reported(row.name) + 1
        series = self.store.metrics(row.name, [PRUNE_METRIC], since_epoch=since)
        return self.search.report(row.name, series.get(PRUNE_METRIC, []), finished)

    def finish(self, row: RunRow) -> None:
        """Tell a trial whose run has ended what it achieved."""
        if self.search is None or not self.search.is_live(row.name):
            return
        self.follow(row, finished=True)  # epochs not seen yet still count at their rungs
        names = [o["name"] for o in objectives_of(self.spec)]
        values = None
        if row.status == "completed":
            values = objmod.objective_values(self.store, self.store.get_run(row.name), names)
        state = self.search.tell(row.name, row.status, values)
        if state == "COMPLETE" and values is not None:
            shown = ", ".join(f"{n} {_short(v)}" for n, v in zip(names, values, strict=True))
            self.notes.append(f"{row.name}: told the sampler {shown}")
        elif row.status == "completed":
            missing = [n for n, v in zip(names, values or [], strict=False) if v is None]
            self.notes.append(f"{row.name}: no value for {', '.join(missing)}; told as failed")


def _index(name: str, sweep: str) -> int | None:
    match = re.fullmatch(re.escape(sweep) + r"-(\d+)", name)
    return int(match.group(1)) if match else None


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

"""Starting a sweep: check the options, plan and validate every trial, then create its runs.

The one path of `rhea sweep` and any other front end: `prepare` checks everything and
writes nothing (a bad option or value is a RheaError before runs.db is opened); `create`
records the sweep and its runs; `supervise.Supervisor` then launches and watches them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, SlurmError, SweepError
from rhea_engine.runs import slurm
from rhea_engine.runs.store import Store
from rhea_engine.sweep.asha import asha_rungs
from rhea_engine.sweep.plan import (
    Axis,
    Range,
    SweepPlan,
    next_sweep_name,
    parse_sweep_values,
    plan_sweep,
)


@dataclass
class SweepRequest:
    """What a front end asks for: the swept values as typed, and how to run the trials."""

    values: dict[str, str | None] = field(default_factory=dict)  # shortcut label -> text
    sets: list[str] = field(default_factory=list)  # --set key=v1,v2
    config_file: Path | None = None
    name: str | None = None
    random: int | None = None  # random search with N trials (None: grid)
    search_seed: int = 0
    parallel: int | None = None
    gpus: str | None = None  # "0,1"
    asha: bool = False
    asha_min_epochs: int = 1
    asha_eta: int = 3
    slurm: bool = False
    partition: str | None = None
    time_limit: str | None = None
    gpus_per_run: int = 1
    account: str | None = None
    cpus_per_run: int | None = None


@dataclass
class PreparedSweep:
    """A request checked and planned: nothing written yet."""

    request: SweepRequest
    plan: SweepPlan
    gpus: list[str]
    slurm: slurm.SlurmOptions | None

    def dry_run(self) -> dict[str, Any]:
        """The trials by the labels the user typed, and the spec (`rhea sweep --dry-run`)."""
        labels: list[Axis | Range] = [*self.plan.axes, *self.plan.ranges]
        trials = [
            {d.label: o[d.keys[0]] for d in labels if d.keys[0] in o} for o in self.plan.trials
        ]
        return {"trials": trials, "spec": self.plan.spec()}


@dataclass
class StartedSweep:
    """A sweep recorded in runs.db with its runs queued."""

    name: str
    run_names: list[str]
    options: Any  # supervise.SweepOptions
    made_default_data: bool = False


def parse_gpus(text: str | None) -> list[str]:
    gpus = [g.strip() for g in (text or "").split(",") if g.strip()]
    if any(not g.isdigit() for g in gpus):
        raise ConfigError(f"--gpus expects GPU indices such as 0,1; got '{text}'.")
    return gpus


def _slurm_options(request: SweepRequest, gpus: list[str]) -> slurm.SlurmOptions | None:
    if not request.slurm:
        if request.partition or request.time_limit or request.account:
            raise SlurmError("--partition, --time and --account only apply with --slurm.")
        return None
    if not request.partition or not request.time_limit:
        raise SlurmError("--slurm needs --partition P and --time HH:MM:SS.")
    slurm.parse_time(request.time_limit)
    if request.gpus_per_run < 0:
        raise SlurmError(f"--gpus-per-run must be 0 or more; got {request.gpus_per_run}.")
    if gpus:
        raise SlurmError("--gpus pins local trials to GPUs; on Slurm use --gpus-per-run K.")
    return slurm.SlurmOptions(
        request.partition,
        request.time_limit,
        request.gpus_per_run,
        request.account,
        request.cpus_per_run,
    )


def base_config(config_file: Path | None, fixed: dict[str, Any], on_slurm: bool) -> dict[str, Any]:
    """The config every trial starts from, with its data files checked (and the device,
    when the trials run on this machine)."""
    from rhea_engine.runs.preflight import check_data_files, check_device

    base = cfgmod.resolve(config_file).to_dict()
    base.update(fixed)
    cfgmod.from_dict(base)  # validate the fixed values together
    base["database_list"] = check_data_files(base["database_list"], "--data", "asymptotic")
    base["stable_database_list"] = check_data_files(
        base["stable_database_list"], "--stable-data", "stable"
    )
    if not on_slurm:
        check_device(base["device"])
    return base


def prepare(request: SweepRequest) -> PreparedSweep:
    """Check every option and plan every trial; raises a RheaError and writes nothing."""
    axes, ranges, fixed = parse_sweep_values(
        request.values, request.sets, request.random is not None
    )
    if request.parallel is not None and request.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1; got {request.parallel}.")
    gpus = parse_gpus(request.gpus)
    slurm_options = _slurm_options(request, gpus)
    base = base_config(request.config_file, fixed, slurm_options is not None)
    plan = plan_sweep(
        request.name or "sweep", base, axes, ranges, request.random, request.search_seed
    )
    if request.asha:
        max_epochs = max(int(c["epochs"]) for c in plan.configs)
        if not asha_rungs(request.asha_min_epochs, request.asha_eta, max_epochs):
            raise ConfigError(
                f"--asha-min-epochs {request.asha_min_epochs} leaves no rung below the "
                f"{max_epochs} epochs of the runs; lower it."
            )
    return PreparedSweep(request, plan, gpus, slurm_options)


def create(
    store: Store,
    prepared: PreparedSweep,
    progress: Callable[[str, float], None] | None = None,
) -> StartedSweep:
    """Record the sweep and queue its runs (the default data set is made on first use)."""
    from rhea_engine.runs import supervise

    request, plan = prepared.request, prepared.plan
    if prepared.slurm is not None:
        slurm.check_partition(prepared.slurm.partition, prepared.slurm.gpus_per_run)
    existing = {s["name"] for s in store.sweeps()}
    plan.name = request.name or next_sweep_name(existing)
    if plan.name in existing:
        raise SweepError(f"A sweep named '{plan.name}' already exists; choose another --name.")
    taken = {r.name for r in store.list_runs()} & set(plan.run_names())
    if taken:
        raise SweepError(f"A run named '{sorted(taken)[0]}' already exists; choose another --name.")
    made = False
    if not plan.base["database_list"] and not plan.base["stable_database_list"]:
        from rhea_engine.runs.defaults import default_data

        asymptotic, stable, made = default_data(store.home, progress=progress)
        plan.configs = [
            {**c, "database_list": asymptotic, "stable_database_list": stable} for c in plan.configs
        ]
    on_slurm = prepared.slurm is not None
    options = supervise.SweepOptions(
        parallel=request.parallel
        or (len(plan.configs) if on_slurm else max(1, len(prepared.gpus))),
        gpus=prepared.gpus,
        asha_min_epochs=request.asha_min_epochs if request.asha else None,
        asha_eta=request.asha_eta,
        slurm=prepared.slurm,
    )
    store.create_sweep(plan.name, {**plan.spec(), "run": options.to_dict()})
    for run_name, run_config in zip(plan.run_names(), plan.configs, strict=True):
        store.create_run(run_config, name=run_name, sweep=plan.name)
    return StartedSweep(plan.name, plan.run_names(), options, made)


def existing(store: Store, name: str) -> Any:
    """The stored options of sweep `name` (to supervise it again); SweepError if unknown."""
    from rhea_engine.runs import supervise

    known = [s["name"] for s in store.sweeps()]
    if name not in known:
        raise SweepError(
            f"There is no sweep '{name}' in {store.home}. Known sweeps: "
            f"{', '.join(known) or 'none'}."
        )
    return supervise.options_of(store, name)

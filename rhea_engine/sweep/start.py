"""Starting a sweep: check the options, plan and validate every trial, then record the sweep.

The one path of `rhea sweep` and any other front end: `prepare` checks everything and
writes nothing (a bad option or value is a RheaError before runs.db is opened); `create`
records the sweep (and the runs of a planned sweep); `supervise.Supervisor` then launches,
follows and ends them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, SlurmError, SweepError
from rhea_engine.runs import cores, slurm
from rhea_engine.runs.rundir import check_tag
from rhea_engine.runs.store import Store
from rhea_engine.sweep import search as searchmod
from rhea_engine.sweep import space as spacemod
from rhea_engine.sweep.budget import Budget, parse_duration
from rhea_engine.sweep.objectives import ALIASES, check_objectives
from rhea_engine.sweep.plan import SweepPlan, next_sweep_name, plan_sweep, validate_trial


@dataclass
class SweepRequest:
    """What a front end asks for: the swept values as typed, and how to search and run."""

    values: dict[str, str | None] = field(default_factory=dict)  # shortcut label -> text
    sets: list[str] = field(default_factory=list)  # --set key=v1,v2 or key=low:high:log
    config_file: Path | None = None
    space_file: Path | None = None
    name: str | None = None
    search: str | None = None  # grid, random, tpe, gp, cmaes (None: grid, or the file's)
    trials: int | None = None
    search_seed: int = 0
    objectives: list[str] = field(default_factory=list)
    parallel: int | None = None
    gpus: str | None = None  # "0,1"
    asha: bool = False
    hyperband: bool = False
    asha_min_epochs: int | None = None
    asha_eta: int | None = None
    budget: str | None = None  # "2h"
    max_epochs_total: int | None = None
    hard: bool = False
    slurm: bool = False
    partition: str | None = None
    time_limit: str | None = None
    gpus_per_run: int = 1
    account: str | None = None
    cpus_per_run: int | None = None
    tags: list[str] = field(default_factory=list)  # every run of the sweep gets them
    cpus: int | None = None  # the cores local trials share (None: all usable ones)


@dataclass
class PreparedSweep:
    """A request checked (and, for grid and random search, planned): nothing written yet."""

    request: SweepRequest
    spec: dict[str, Any]  # stored with the sweep
    options: Any  # supervise.SweepOptions
    plan: SweepPlan | None  # planned searches only
    notes: list[str] = field(default_factory=list)

    def dry_run(self) -> dict[str, Any]:
        """The trials (planned) or the search (sampled), as `rhea sweep --dry-run` prints."""
        if self.plan is not None:
            return {"trials": self.plan.labelled_trials(), "spec": self.spec}
        return {"spec": {k: v for k, v in self.spec.items() if k != "base"}}


@dataclass
class StartedSweep:
    """A sweep recorded in runs.db (a planned one with its runs queued)."""

    name: str
    run_names: list[str]  # planned runs; empty for a sampled search (runs come as asked)
    options: Any  # supervise.SweepOptions
    total: int | None  # trials to run (None: until the budget is spent)
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
        if request.gpus_per_run != 1 or request.cpus_per_run is not None:
            raise SlurmError("--gpus-per-run and --cpus-per-run only apply with --slurm.")
        cores.cpu_pool(request.cpus)  # a --cpus this machine cannot give
        return None
    if request.cpus is not None:
        raise SlurmError("--cpus shares local cores; on Slurm use --cpus-per-run N.")
    if not request.partition or not request.time_limit:
        raise SlurmError("--slurm needs --partition P and --time HH:MM:SS.")
    slurm.parse_time(request.time_limit)
    if request.gpus_per_run < 0:
        raise SlurmError(f"--gpus-per-run must be 0 or more; got {request.gpus_per_run}.")
    if request.cpus_per_run is not None and request.cpus_per_run < 1:
        raise SlurmError(f"--cpus-per-run must be 1 or more; got {request.cpus_per_run}.")
    if gpus:
        raise SlurmError("--gpus pins local trials to GPUs; on Slurm use --gpus-per-run K.")
    return slurm.SlurmOptions(
        request.partition,
        request.time_limit,
        request.gpus_per_run,
        request.account,
        request.cpus_per_run,
    )


def base_config(
    config_file: Path | None, fixed: dict[str, Any], on_slurm: bool, gpus: list[str]
) -> dict[str, Any]:
    """The config every trial starts from, with its data files checked (and the device and
    GPUs, when the trials run on this machine)."""
    from rhea_engine.runs.preflight import check_data_files, check_device, check_gpus

    base = cfgmod.resolve(config_file).to_dict()
    base.update(fixed)
    cfgmod.from_dict(base)  # validate the fixed values together
    base["database_list"] = check_data_files(base["database_list"], "--data", "asymptotic")
    base["stable_database_list"] = check_data_files(
        base["stable_database_list"], "--stable-data", "stable"
    )
    if not on_slurm:
        check_device(base["device"])
        check_gpus(gpus, base["device"])
    return base


def _space(request: SweepRequest) -> tuple[list[spacemod.Dimension], dict[str, Any], Any]:
    dims, fixed = spacemod.parse_values(request.values, request.sets)
    if request.space_file is None:
        return dims, fixed, None
    loaded = spacemod.load_space_file(request.space_file)
    fixed = {**{k: v for k, v in loaded.fixed.items() if k not in fixed}, **fixed}
    dims = spacemod.merge(loaded.dimensions, dims)
    dims = [d for d in dims if not set(d.keys) & set(fixed)]
    return dims, fixed, loaded


def _objectives(request: SweepRequest, loaded: Any) -> list[dict[str, str]]:
    names = check_objectives(
        request.objectives or ([loaded.metric] if loaded and loaded.metric else [])
    )
    mode = (
        "max" if loaded is not None and loaded.mode == "max" and not request.objectives else "min"
    )
    direction = "maximize" if mode == "max" else "minimize"
    return [{"name": ALIASES.get(n, n), "direction": direction} for n in names]


def _pruning(
    request: SweepRequest, defaults: dict[str, Any], max_epochs: int
) -> dict[str, Any] | None:
    if request.asha and request.hyperband:
        raise ConfigError("Give --asha or --hyperband, not both.")
    kind = "asha" if request.asha else "hyperband" if request.hyperband else defaults.get("pruner")
    if kind is None:
        if request.asha_min_epochs is not None or request.asha_eta is not None:
            raise ConfigError("--asha-min-epochs and --asha-eta apply with --asha or --hyperband.")
        return None
    min_epochs = request.asha_min_epochs or int(defaults.get("min_epochs", 1))
    eta = request.asha_eta or int(defaults.get("eta", 3))
    searchmod.check_pruning(min_epochs, eta, max_epochs)
    return {"kind": kind, "min_epochs": min_epochs, "eta": eta}


def _check_corners(base: dict[str, Any], dims: list[spacemod.Dimension]) -> None:
    """Every value a sampler may draw makes a valid config (the ends of each range)."""
    from rhea_engine.sweep.plan import override_of

    for dim in dims:
        for value in dim.values if dim.is_choice else (dim.lower, dim.upper):
            validate_trial(base, override_of(dim, value), [dim], 0)


def _budget(request: SweepRequest, defaults: dict[str, Any]) -> Budget:
    seconds = parse_duration(request.budget) if request.budget else defaults.get("budget_seconds")
    budget = Budget(seconds, request.max_epochs_total, request.hard)
    if request.hard and not budget.limited:
        raise ConfigError(
            "--hard stops running trials when the budget is spent; give --budget or "
            "--max-epochs-total."
        )
    return budget


def _trials(
    request: SweepRequest,
    search: str,
    base: dict[str, Any],
    dims: list[spacemod.Dimension],
    budget: Budget,
) -> tuple[SweepPlan | None, int]:
    """The plan of a grid or random search (None for a sampled one) and the most epochs a
    trial trains; every trial (or every end of every range) is checked to be valid."""
    if search in ("grid", "random"):
        if search == "grid" and request.trials is not None:
            raise ConfigError(
                "A grid runs every combination; --trials applies to the other searches."
            )
        if search == "random" and request.trials is None:
            raise ConfigError("--search random needs --trials N (the number of trials).")
        count = request.trials if search == "random" else None
        plan = plan_sweep(request.name or "sweep", base, dims, count, request.search_seed)
        return plan, max(int(c["epochs"]) for c in plan.configs)
    if not dims:
        raise ConfigError(
            f"Nothing to search: give ranges such as --lr 1e-5:1e-2:log for --search {search}."
        )
    if request.trials is None and not budget.limited:
        raise ConfigError(f"--search {search} needs --trials N, a --budget or --max-epochs-total.")
    _check_corners(base, dims)
    epochs = [int(v) for d in dims if d.keys == ("epochs",) for v in (d.values or (d.upper,))]
    return None, max([int(base["epochs"]), *epochs])


def prepare(request: SweepRequest, dry_run: bool = False) -> PreparedSweep:
    """Check every option and plan every trial; raises a RheaError and writes nothing.

    Slurm's partition is asked about here too (not for a dry run), before runs.db exists.
    """
    from rhea_engine.runs.supervise import SweepOptions

    for tag in request.tags:
        check_tag(tag)
    dims, fixed, loaded = _space(request)
    defaults = loaded.defaults if loaded is not None else {}
    search = request.search or defaults.get("search") or "grid"
    if request.parallel is not None and request.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1; got {request.parallel}.")
    low, high = cfgmod.INT_RANGES["random_seed"]
    if not low <= request.search_seed <= high:
        raise ConfigError(
            f"--search-seed must be at least {low} and at most {high}; got {request.search_seed}."
        )
    if request.trials is not None and request.trials < 1:
        raise ConfigError(f"--trials must be at least 1; got {request.trials}.")
    budget = _budget(request, defaults)
    objectives = _objectives(request, loaded)
    gpus = parse_gpus(request.gpus)
    slurm_options = _slurm_options(request, gpus)
    base = base_config(request.config_file, fixed, slurm_options is not None, gpus)
    plan, max_epochs = _trials(request, search, base, dims, budget)
    pruning = _pruning(request, defaults, max_epochs)
    kind = pruning["kind"] if pruning else None
    searchmod.check_search(search, [o["name"] for o in objectives], kind, dims)
    all_at_once = len(plan.configs) if plan is not None else 4  # on Slurm
    default = all_at_once if slurm_options is not None else max(1, len(gpus))
    parallel = request.parallel or defaults.get("parallel") or default
    options = SweepOptions(int(parallel), gpus, pruning, slurm_options, budget, request.cpus)
    if slurm_options is not None and not dry_run:
        slurm.check_partition(slurm_options.partition, slurm_options.gpus_per_run)
    spec: dict[str, Any] = (
        plan.spec()
        if plan is not None
        else {"kind": search, "trials": request.trials, "search_seed": request.search_seed}
    )
    spec.update(
        search=search,
        space={d.label: d.to_dict() for d in dims},
        objectives=objectives,
        run=options.to_dict(),
    )
    if plan is None:
        spec["base"] = base
    notes = []
    if loaded is not None and loaded.ignored:
        notes.append(f"{request.space_file}: not used by Rhea: {', '.join(loaded.ignored)}")
    return PreparedSweep(request, spec, options, plan, notes)


def create(
    store: Store,
    prepared: PreparedSweep,
    progress: Callable[[str, float], None] | None = None,
) -> StartedSweep:
    """Record the sweep and queue its planned runs (the default data set is made on first use)."""
    request, plan, spec = prepared.request, prepared.plan, prepared.spec
    existing = {s["name"] for s in store.sweeps()}
    name = request.name or next_sweep_name(existing)
    if name in existing:
        raise SweepError(f"A sweep named '{name}' already exists; choose another --name.")
    run_names = [f"{name}-{i}" for i in range(1, len(plan.trials) + 1)] if plan else []
    taken = {r.name for r in store.list_runs()} & set(run_names)
    if taken:
        raise SweepError(f"A run named '{sorted(taken)[0]}' already exists; choose another --name.")
    if (store.home / "sweeps" / name).exists():
        raise SweepError(
            f"The folder {store.home / 'sweeps' / name} already exists; choose another --name."
        )
    data = plan.base if plan is not None else spec["base"]
    made = False
    if not data["database_list"] and not data["stable_database_list"]:
        from rhea_engine.runs.defaults import default_data

        asymptotic, stable, made = default_data(store.home, progress=progress)
        files = {"database_list": asymptotic, "stable_database_list": stable}
        if plan is not None:
            plan.configs = [{**c, **files} for c in plan.configs]
        else:
            spec["base"] = {**spec["base"], **files}
    store.create_sweep(name, spec, tags=request.tags)
    if plan is not None:
        plan.name = name
        for run_name, run_config in zip(run_names, plan.configs, strict=True):
            store.create_run(run_config, name=run_name, sweep=name)
    total = len(run_names) if plan is not None else spec.get("trials")
    return StartedSweep(name, run_names, prepared.options, total, made)

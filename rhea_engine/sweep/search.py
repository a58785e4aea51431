"""Model-based search and pruning on Optuna's ask-and-tell, kept in the sweep's own folder.

Each sweep with a sampler (tpe, gp, cmaes) or a pruner (asha, hyperband) has an Optuna study
in `sweeps/NAME/optuna.journal` (Optuna's journal file storage, safe on network file
systems). A trial is asked when a slot is free, becomes the run `NAME-k` (its `run` user
attribute), hears that run's per-epoch test loss, and is told the run's result when the run
ends. Planned trials (grid, random) are enqueued with their values, so pruning works alike.
Optuna is imported here only, and only when a sweep needs it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rhea_engine.errors import ConfigError
from rhea_engine.sweep.space import Dimension

if TYPE_CHECKING:
    import optuna

SEARCHES = ("grid", "random", "tpe", "gp", "cmaes")
MODEL_BASED = ("tpe", "gp", "cmaes")
PRUNERS = ("asha", "hyperband")
JOURNAL = "optuna.journal"
PRUNE_METRIC = "test_loss"
_PRUNER_NAMES = {"asha": "ASHA", "hyperband": "Hyperband"}


def sweep_folder(home: Path, sweep: str) -> Path:
    """`HOME/sweeps/NAME/`: the journal and the lock of one sweep."""
    return Path(home) / "sweeps" / sweep


def startup_trials(trials: int | None) -> int:
    """Random trials before a model is fitted: a quarter of the trials, 3 to 10."""
    return 10 if trials is None else max(3, min(10, trials // 4))


def check_search(
    search: str, objectives: Sequence[str], pruner: str | None, dims: Sequence[Dimension]
) -> None:
    """ConfigError for combinations Optuna cannot run."""
    if search not in SEARCHES:
        raise ConfigError(f"Unknown search '{search}'; use one of {', '.join(SEARCHES)}.")
    if pruner is not None and len(objectives) > 1:
        raise ConfigError(
            "Pruning (--asha, --hyperband) compares trials on one loss; a search with several "
            "--objective values cannot prune. Drop the pruning or keep one objective."
        )
    if search == "cmaes" and len(objectives) > 1:
        raise ConfigError(
            "CMA-ES optimises a single objective; for several --objective values use "
            "--search tpe or --search gp."
        )
    if search == "cmaes" and all(d.is_choice for d in dims):
        raise ConfigError(
            "CMA-ES needs at least one numeric range (such as --lr 1e-5:1e-2:log); for choice "
            "lists alone use --search tpe or grid."
        )


def distribution(dim: Dimension) -> Any:
    """The Optuna distribution of one dimension."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if dim.is_choice:
        return CategoricalDistribution(list(dim.values))
    assert dim.lower is not None and dim.upper is not None
    log = dim.type in ("loguniform", "lograndint")
    if dim.is_int:
        return IntDistribution(int(dim.lower), int(dim.upper), log=log)
    return FloatDistribution(dim.lower, dim.upper, log=log)


def _sampler(search: str, seed: int, trials: int | None) -> Any:
    import optuna

    startup = startup_trials(trials)
    if search == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True
        )
    if search == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if search == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False
        )
    return optuna.samplers.RandomSampler(seed=seed)  # planned trials come enqueued


def _pruner(pruning: Mapping[str, Any] | None, max_epochs: int) -> Any:
    import optuna

    if not pruning:
        return optuna.pruners.NopPruner()
    min_epochs, eta = int(pruning["min_epochs"]), int(pruning["eta"])
    if pruning["kind"] == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_epochs, max_resource=max_epochs, reduction_factor=eta
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_epochs, reduction_factor=eta, min_early_stopping_rate=0
    )


def check_pruning(min_epochs: int, eta: int, max_epochs: int) -> None:
    """ConfigError unless the first rung lies below the trials' epochs."""
    if min_epochs < 1:
        raise ConfigError(f"--asha-min-epochs must be at least 1; got {min_epochs}.")
    if eta < 2:
        raise ConfigError(f"--asha-eta must be at least 2; got {eta}.")
    if min_epochs >= max_epochs:
        raise ConfigError(
            f"--asha-min-epochs {min_epochs} leaves no rung below the {max_epochs} epochs of "
            "the runs; lower it."
        )


class TrialSearch:
    """The sweep's Optuna study: ask trials, report epochs, tell results, keyed by run name."""

    def __init__(self, study: optuna.Study, dims: Sequence[Dimension], pruning: Any) -> None:
        self.study = study
        self.dims = list(dims)
        self.distributions = {d.label: distribution(d) for d in dims}
        self.pruning = dict(pruning or {})
        self._live: dict[str, optuna.trial.Trial] = {}  # run -> trial still running
        self._reported: dict[str, int] = {}  # run -> last epoch reported
        import optuna

        for frozen in study.get_trials(deepcopy=False):
            if frozen.state != optuna.trial.TrialState.RUNNING:
                continue
            run = frozen.user_attrs.get("run")
            if not run:  # asked by a front end that stopped before naming its run
                study.tell(frozen.number, state=_state("FAIL"), skip_if_finished=True)
                continue
            # a trial of an earlier front end of this sweep (Optuna has no public handle)
            self._live[run] = optuna.trial.Trial(study, frozen._trial_id)
            self._reported[run] = max(frozen.intermediate_values, default=0)

    @classmethod
    def open(
        cls, folder: Path | None, name: str, spec: Mapping[str, Any], dims: Sequence[Dimension]
    ) -> TrialSearch:
        """The study kept in `folder` (None: in memory), created on first use."""
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        storage: Any = None
        if folder is not None:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            folder.mkdir(parents=True, exist_ok=True)
            storage = JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
        directions = [o["direction"] for o in spec["objectives"]]
        try:
            told = len(optuna.load_study(study_name=name, storage=storage).trials)
        except (KeyError, ValueError):
            told = 0  # a new study
        seed = int(spec.get("search_seed") or 0) + told  # a resumed search draws anew
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=directions,
            sampler=_sampler(spec["search"], seed, spec.get("trials")),
            pruner=_pruner(spec.get("pruning"), int(spec.get("max_epochs") or 1)),
            load_if_exists=True,
        )
        return cls(study, dims, spec.get("pruning"))

    # -- the life of a trial ----------------------------------------------------------------
    def ask(self, run: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A new trial for `run`: sampled, or with the given {label: value} (planned)."""
        if params is not None:
            self.study.enqueue_trial(dict(params), user_attrs={"run": run})
        trial = self.study.ask(self.distributions)
        trial.set_user_attr("run", run)
        self._live[run] = trial
        self._reported[run] = 0
        return dict(trial.params)

    def abandon(self, run: str, why: str) -> None:
        """A trial whose run could not be created: told as failed."""
        trial = self._live.pop(run, None)
        if trial is not None:
            trial.set_user_attr("abandoned", why)
            self.study.tell(trial, state=_state("FAIL"), skip_if_finished=True)

    def is_live(self, run: str) -> bool:
        return run in self._live

    def live_runs(self) -> list[str]:
        return list(self._live)

    def report(
        self, run: str, series: Iterable[tuple[int, float]], finished: bool = False
    ) -> tuple[int, float] | None:
        """Report new epochs' test losses in order; (epoch, loss) where the pruner stops it.

        Each epoch is judged as if it had just ended (the pruner reads the latest step), so a
        run whose epochs came faster than the supervisor looked is judged epoch by epoch; a
        `finished` run has all its epochs entered at their rungs and is never stopped.
        """
        trial = self._live.get(run)
        if trial is None or not self.pruning:
            return None
        verdict = None
        for epoch, loss in sorted(series):
            if epoch <= self._reported.get(run, 0):
                continue
            trial.report(loss if math.isfinite(loss) else math.nan, epoch)
            self._reported[run] = epoch
            if trial.should_prune() and verdict is None:
                verdict = (epoch, loss)
                if not finished:
                    return verdict
        return None if finished else verdict

    def reported(self, run: str) -> int:
        return self._reported.get(run, 0)

    def tell(self, run: str, status: str, values: Sequence[float | None] | None) -> str:
        """Tell a trial its run's outcome; returns the Optuna state it was given."""
        trial = self._live.pop(run, None)
        if trial is None:
            return "unknown"
        trial.set_user_attr("status", status)
        if status == "completed" and values is not None and all(v is not None for v in values):
            self.study.tell(trial, [float(v) for v in values if v is not None])
            return "COMPLETE"
        # a stopped trial (pruned, or stopped when the budget ran out) keeps its curve
        state = "PRUNED" if status in ("pruned", "stopped") and self.reported(run) else "FAIL"
        self.study.tell(trial, state=_state(state), skip_if_finished=True)
        return state

    def why_pruned(self, run: str, epoch: int, loss: float) -> str:
        name = _PRUNER_NAMES.get(self.pruning.get("kind", ""), "the pruner")
        eta = self.pruning.get("eta", 3)
        return (
            f"Pruned by {name} at epoch {epoch}: its test loss {loss:.4g} was not among the "
            f"best 1/{eta} of the trials that reached that epoch."
        )


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]

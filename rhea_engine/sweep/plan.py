"""Sweep plans: grid and random expansion of a search space, validated before anything is written.

A planned sweep (grid or random search) knows every trial up front: each trial's config is
validated before anything is written, so a bad key or value stops it with a ConfigError
and leaves no trace. Model-based searches ask their trials one at a time (`search`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, SweepError
from rhea_engine.sweep.space import Dimension

_SWEEP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")


@dataclass
class SweepPlan:
    """A fully validated planned sweep: the base config and one override dict per trial."""

    name: str
    base: dict[str, Any]
    dims: list[Dimension] = field(default_factory=list)
    n_random: int | None = None
    search_seed: int = 0
    trials: list[dict[str, Any]] = field(default_factory=list)  # overrides (by config key)
    configs: list[dict[str, Any]] = field(default_factory=list)  # full resolved configs

    def run_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(1, len(self.trials) + 1)]

    def spec(self) -> dict[str, Any]:
        """JSON-able description stored with the sweep."""
        return {
            "kind": "random" if self.n_random else "grid",
            "axes": {d.label: list(d.values) for d in self.dims if d.is_choice},
            "ranges": {d.label: d.describe() for d in self.dims if not d.is_choice},
            "n_random": self.n_random,
            "search_seed": self.search_seed,
            "trials": len(self.trials),
        }

    def labelled_trials(self) -> list[dict[str, Any]]:
        """Each trial's values by the labels the user typed."""
        return [trial_params(override, self.dims) for override in self.trials]


def check_sweep_name(name: str) -> str:
    """Sweep names become run-name prefixes, so they obey the run-name rules (shorter)."""
    if not _SWEEP_NAME_RE.fullmatch(name) or ".." in name:
        raise SweepError(
            f"'{name}' is not a valid sweep name: use 1-48 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (for example 'lr-scan')."
        )
    return name


def override_of(dim: Dimension, value: Any) -> dict[str, Any]:
    """The config keys a dimension's value sets, coerced to each key's type."""
    return {key: cfgmod.coerce(key, value) for key in dim.keys}


def trial_params(override: Mapping[str, Any], dims: Sequence[Dimension]) -> dict[str, Any]:
    """{label: value} of a trial's override, for the dimensions it sets."""
    return {d.label: override[d.keys[0]] for d in dims if d.keys[0] in override}


def expand_grid(dims: Sequence[Dimension]) -> list[dict[str, Any]]:
    """The Cartesian product of the choices, first dimension slowest, as per-trial overrides."""
    ranges = [d for d in dims if not d.is_choice]
    if ranges:
        raise ConfigError(
            f"'{ranges[0].label}={ranges[0].describe()}' is a range; ranges need --random N "
            "(the number of trials) or --search tpe|gp|cmaes --trials N. For a grid give a "
            "comma list such as 1e-4,1e-5."
        )
    trials = []
    for combo in itertools.product(*(d.values for d in dims)):
        override: dict[str, Any] = {}
        for dim, value in zip(dims, combo, strict=True):
            override.update(override_of(dim, value))
        trials.append(override)
    return trials


def sample_random(dims: Sequence[Dimension], n: int, seed: int) -> list[dict[str, Any]]:
    """`n` trials drawn with a generator seeded by `seed` (same seed, same trials): the ranges
    first, then the choices, each in the order given."""
    if n < 1:
        raise ConfigError(f"A random search needs at least 1 trial; got {n}.")
    rng = np.random.default_rng(seed)
    ordered = [d for d in dims if not d.is_choice] + [d for d in dims if d.is_choice]
    trials = []
    for _ in range(n):
        override: dict[str, Any] = {}
        for dim in ordered:
            override.update(override_of(dim, dim.sample(rng)))
        trials.append(override)
    return trials


def validate_trial(
    base: Mapping[str, Any], override: Mapping[str, Any], dims: Sequence[Dimension], index: int
) -> dict[str, Any]:
    """The trial's full config; a ConfigError names the trial and its values."""
    try:
        return cfgmod.from_dict({**base, **override}).to_dict()
    except ConfigError as exc:
        shown = ", ".join(f"{k}={v}" for k, v in trial_params(override, dims).items())
        raise ConfigError(
            f"Trial {index} of the sweep ({shown}) is invalid: {exc.message}"
        ) from None


def plan_sweep(
    name: str,
    base: Mapping[str, Any],
    dims: Sequence[Dimension],
    n_random: int | None = None,
    search_seed: int = 0,
    max_trials: int = 1000,
) -> SweepPlan:
    """Expand and validate every trial (a ConfigError names the first bad one)."""
    check_sweep_name(name)
    if n_random is None and not dims:
        raise ConfigError(
            "Nothing to sweep: give at least one flag with several comma values "
            "(for example --lr 1e-4,1e-5) or --random N with ranges."
        )
    # Counted before any trial is drawn or expanded: a count of 2**63 must not hang here.
    count = n_random if n_random is not None else math.prod(len(d.values or ()) for d in dims)
    if count > max_trials:
        raise ConfigError(f"The sweep has {count} trials, more than the limit of {max_trials}.")
    if n_random is not None:
        trials = sample_random(dims, n_random, search_seed)
    else:
        trials = expand_grid(dims)
    configs = [validate_trial(base, o, dims, i) for i, o in enumerate(trials, start=1)]
    return SweepPlan(name, dict(base), list(dims), n_random, search_seed, trials, configs)


def next_sweep_name(existing: Iterable[str]) -> str:
    """sweep1, sweep2, ...: one past the highest used number."""
    numbers = [int(m.group(1)) for n in existing if (m := re.fullmatch(r"sweep(\d+)", n))]
    return f"sweep{max(numbers, default=0) + 1}"

"""Sweep plans: grid and random expansion over config keys, validated before anything is written.

A sweep is planned completely (every trial's config validated) before anything is
written, so a bad key or value stops it with a ConfigError and leaves no trace.
The supervisor that launches and watches the trials lives in `rhea_engine.runs.supervise`.
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

RANDOM_SCALES = ("lin", "log", "int", "logint")
_SWEEP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")


@dataclass(frozen=True)
class Axis:
    """One swept dimension: `label` (a shortcut such as 'lr' or a config key) sets `keys`."""

    label: str
    keys: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """A random-search range `low:high[:scale]` for the keys of one label."""

    label: str
    keys: tuple[str, ...]
    low: float
    high: float
    scale: str = "lin"

    def sample(self, rng: np.random.Generator) -> Any:
        if self.scale == "lin":
            return float(rng.uniform(self.low, self.high))
        if self.scale == "log":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        if self.scale == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        # logint: integers spread evenly in log space (widths 16..512)
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
        return int(min(max(math.floor(value), self.low), self.high))


@dataclass
class SweepPlan:
    """A fully validated sweep: the base config and one override dict per trial."""

    name: str
    base: dict[str, Any]
    axes: list[Axis] = field(default_factory=list)
    ranges: list[Range] = field(default_factory=list)
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
            "axes": {a.label: list(a.values) for a in self.axes},
            "ranges": {r.label: f"{r.low}:{r.high}:{r.scale}" for r in self.ranges},
            "n_random": self.n_random,
            "search_seed": self.search_seed,
            "trials": len(self.trials),
        }


def check_sweep_name(name: str) -> str:
    """Sweep names become run-name prefixes, so they obey the run-name rules (shorter)."""
    if not _SWEEP_NAME_RE.fullmatch(name) or ".." in name:
        raise SweepError(
            f"'{name}' is not a valid sweep name: use 1-48 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (for example 'lr-scan')."
        )
    return name


def label_keys(label: str) -> tuple[str, ...]:
    """The config keys a CLI label sets: a shortcut (lr, width, ...) or a config key itself."""
    if label in cfgmod.SHORTCUTS:
        return cfgmod.SHORTCUTS[label]
    cfgmod.key_type(label)  # raises ConfigError naming the accepted keys
    return (label,)


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def parse_axis(label: str, text: str) -> Axis:
    """A comma list `v1,v2,...` for `label`, each value coerced to the key's type."""
    keys = label_keys(label)
    if cfgmod.key_type(keys[0]) is tuple:
        raise ConfigError(
            f"'{label}' is a list of files and cannot be swept as a grid; give it once "
            "(comma-separated files are one value)."
        )
    parts = _split_list(text)
    if not parts:
        raise ConfigError(
            f"No values given for '{label}'; expected a comma list such as 1e-4,1e-5."
        )
    values = []
    for part in parts:
        value = cfgmod.coerce(keys[0], part)
        if value not in values:
            values.append(value)
    return Axis(label, keys, tuple(values))


def is_range(text: str) -> bool:
    return ":" in str(text)


def parse_range(label: str, text: str) -> Range:
    """`low:high[:scale]` with scale lin (default for floats), log, int or logint."""
    keys = label_keys(label)
    kind = cfgmod.key_type(keys[0])
    parts = [p.strip() for p in str(text).split(":")]
    example = "--lr 1e-6:1e-3:log or --width 16:128:int"
    if len(parts) not in (2, 3) or kind not in (int, float):
        raise ConfigError(
            f"'{label}={text}' is not a random range: use low:high[:scale] with scale one of "
            f"{', '.join(RANDOM_SCALES)} on a numeric key (for example {example})."
        )
    scale = parts[2] if len(parts) == 3 else ("int" if kind is int else "lin")
    if scale not in RANDOM_SCALES:
        raise ConfigError(
            f"Unknown range scale '{scale}' for '{label}'; use one of {', '.join(RANDOM_SCALES)}."
        )
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"'{label}={text}': the bounds must be numbers ({example}).") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"'{label}={text}': need finite bounds with low <= high.")
    if scale in ("log", "logint") and low <= 0:
        raise ConfigError(f"'{label}={text}': a log range needs positive bounds.")
    if kind is int and scale in ("lin", "log"):
        scale = "int" if scale == "lin" else "logint"
    if kind is float and scale in ("int", "logint"):
        raise ConfigError(f"'{label}' takes real values; use the scale lin or log, not {scale}.")
    if scale in ("int", "logint") and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"'{label}={text}': an integer range needs integer bounds.")
    return Range(label, keys, low, high, scale)


def parse_sweep_values(
    values: Mapping[str, str | None], sets: Iterable[str], random: bool
) -> tuple[list[Axis], list[Range], dict[str, Any]]:
    """Turn `{label: text}` (shortcuts) and `--set key=v1,v2` items into axes, ranges and fixed values.

    A single value is a fixed override; several comma values make an axis; in random mode
    `low:high[:scale]` makes a range and a comma list is sampled uniformly.
    """
    items: list[tuple[str, str]] = [(k, v) for k, v in values.items() if v is not None]
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value or key=v1,v2,...; got '{item}'.")
        key, text = item.split("=", 1)
        items.append((key.strip(), text))
    axes: list[Axis] = []
    ranges: list[Range] = []
    fixed: dict[str, Any] = {}
    seen: set[str] = set()
    for label, text in items:
        keys = label_keys(label)
        if cfgmod.key_type(keys[0]) is tuple:
            for key in keys:
                fixed[key] = cfgmod.coerce(key, text)
            continue
        if not random and is_range(text):
            raise ConfigError(
                f"'{label}={text}' is a range; ranges such as 1e-6:1e-3:log need --random N "
                "(the number of trials). For a grid give a comma list such as 1e-4,1e-5."
            )
        if random and is_range(text):
            rng_spec = parse_range(label, text)
            ranges.append(rng_spec)
            new_keys = set(keys)
        else:
            axis = parse_axis(label, text)
            new_keys = set(keys)
            if len(axis.values) == 1:
                for key in keys:
                    fixed[key] = cfgmod.coerce(key, axis.values[0])
                continue
            axes.append(axis)
        if new_keys & seen:
            raise ConfigError(f"'{label}' sweeps a key that another flag already sweeps.")
        seen |= new_keys
    both = sorted(set(fixed) & seen)
    if both:
        raise ConfigError(f"'{both[0]}' is both swept and set to one value; give it once.")
    return axes, ranges, fixed


def expand_grid(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """The Cartesian product of the axes, first axis slowest, as per-trial overrides."""
    trials = []
    for combo in itertools.product(*(axis.values for axis in axes)):
        override: dict[str, Any] = {}
        for axis, value in zip(axes, combo, strict=True):
            for key in axis.keys:
                override[key] = cfgmod.coerce(key, value)
        trials.append(override)
    return trials


def sample_random(
    axes: Sequence[Axis], ranges: Sequence[Range], n: int, seed: int
) -> list[dict[str, Any]]:
    """`n` trials drawn with a generator seeded by `seed` (same seed, same trials)."""
    if n < 1:
        raise ConfigError(f"--random needs at least 1 trial; got {n}.")
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n):
        override: dict[str, Any] = {}
        for rng_spec in ranges:
            value = rng_spec.sample(rng)
            for key in rng_spec.keys:
                override[key] = cfgmod.coerce(key, value)
        for axis in axes:
            value = axis.values[int(rng.integers(len(axis.values)))]
            for key in axis.keys:
                override[key] = cfgmod.coerce(key, value)
        trials.append(override)
    return trials


def plan_sweep(
    name: str,
    base: Mapping[str, Any],
    axes: Sequence[Axis],
    ranges: Sequence[Range] = (),
    n_random: int | None = None,
    search_seed: int = 0,
    max_trials: int = 1000,
) -> SweepPlan:
    """Expand and validate every trial (a ConfigError names the first bad one)."""
    check_sweep_name(name)
    if n_random is None and ranges:
        raise ConfigError("Ranges such as 1e-6:1e-3:log need --random N (the number of trials).")
    if n_random is not None:
        trials = sample_random(axes, ranges, n_random, search_seed)
    else:
        if not axes:
            raise ConfigError(
                "Nothing to sweep: give at least one flag with several comma values "
                "(for example --lr 1e-4,1e-5) or --random N with ranges."
            )
        trials = expand_grid(axes)
    if len(trials) > max_trials:
        raise ConfigError(
            f"The sweep has {len(trials)} trials, more than the limit of {max_trials}."
        )
    configs = []
    for index, override in enumerate(trials, start=1):
        try:
            configs.append(cfgmod.from_dict({**base, **override}).to_dict())
        except ConfigError as exc:
            shown = describe_trial(override, [*axes, *ranges])
            raise ConfigError(
                f"Trial {index} of the sweep ({shown}) is invalid: {exc.message}"
            ) from None
    return SweepPlan(
        name=name,
        base=dict(base),
        axes=list(axes),
        ranges=list(ranges),
        n_random=n_random,
        search_seed=search_seed,
        trials=trials,
        configs=configs,
    )


def describe_trial(override: Mapping[str, Any], dims: Sequence[Axis | Range]) -> str:
    """'lr=0.0001, width=32': a trial's values by the labels the user typed."""
    parts = [f"{d.label}={override[d.keys[0]]}" for d in dims if d.keys[0] in override]
    return ", ".join(parts)


def next_sweep_name(existing: Iterable[str]) -> str:
    """sweep1, sweep2, ...: one past the highest used number."""
    numbers = [int(m.group(1)) for n in existing if (m := re.fullmatch(r"sweep(\d+)", n))]
    return f"sweep{max(numbers, default=0) + 1}"

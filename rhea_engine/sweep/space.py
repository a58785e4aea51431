"""Search spaces: one swept dimension per label, from CLI values or a `--space` file.

A dimension has the shape of upstream main's Syne Tune `config_space` entries:
`{type: choice|uniform|loguniform|randint|lograndint, lower, upper, values}`. The CLI forms
are sugar for it: `v1,v2` is a choice, `low:high[:lin|log|int|logint]` a range
(lin = uniform, log = loguniform, int = randint, logint = lograndint). Integer bounds are
inclusive. A `--space` file (JSON or TOML) holds the dimensions under `config_space`, with
`metric`, `mode` and `max_resource_attr` beside it, as upstream's `parms["syne_tune"]` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError

# CLI range scale -> dimension type
SCALES = {"lin": "uniform", "log": "loguniform", "int": "randint", "logint": "lograndint"}
RANGE_TYPES = tuple(SCALES.values())
TYPES = ("choice", *RANGE_TYPES)
RANDOM_SCALES = tuple(SCALES)
_EXAMPLE = "--lr 1e-6:1e-3:log or --width 16:128:int"


@dataclass(frozen=True)
class Dimension:
    """One swept dimension: `label` (a shortcut such as 'lr', or a config key) sets `keys`."""

    label: str
    keys: tuple[str, ...]
    type: str  # one of TYPES
    lower: float | None = None
    upper: float | None = None
    values: tuple[Any, ...] = ()

    @property
    def is_choice(self) -> bool:
        return self.type == "choice"

    @property
    def is_int(self) -> bool:
        return self.type in ("randint", "lograndint")

    @property
    def scale(self) -> str:
        """The CLI scale of a range (lin, log, int, logint)."""
        return {t: s for s, t in SCALES.items()}[self.type]

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn with `rng` (choices uniformly; log types uniform in the log)."""
        if self.is_choice:
            return self.values[int(rng.integers(len(self.values)))]
        assert self.lower is not None and self.upper is not None
        low, high = self.lower, self.upper
        if self.type == "uniform":
            return float(rng.uniform(low, high))
        if self.type == "loguniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.type == "randint":
            return int(rng.integers(int(low), int(high) + 1))
        # lograndint: integers spread evenly in log space (widths 16..512)
        value = math.exp(rng.uniform(math.log(low), math.log(high + 1)))
        return int(min(max(math.floor(value), low), high))

    def to_dict(self) -> dict[str, Any]:
        """The Syne Tune shape, plus the config keys the label sets."""
        if self.is_choice:
            return {"type": "choice", "values": list(self.values), "keys": list(self.keys)}
        lower, upper = self.lower, self.upper
        if self.is_int:
            lower, upper = int(lower or 0), int(upper or 0)
        return {"type": self.type, "lower": lower, "upper": upper, "keys": list(self.keys)}

    def describe(self) -> str:
        """As typed on the command line: `1e-06:0.001:log` or `8,16`."""
        if self.is_choice:
            return ",".join(str(v) for v in self.values)
        return f"{self.lower:g}:{self.upper:g}:{self.scale}"


@dataclass
class SpaceFile:
    """What a `--space` file holds besides its dimensions."""

    dimensions: list[Dimension] = field(default_factory=list)
    fixed: dict[str, Any] = field(default_factory=dict)  # config key -> value
    metric: str | None = None
    mode: str = "min"
    max_resource_attr: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)  # search, asha, eta, budget, parallel
    ignored: list[str] = field(default_factory=list)  # sections Rhea does not use


def label_keys(label: str) -> tuple[str, ...]:
    """The config keys a label sets: a CLI shortcut, a config key, or an upstream parms name."""
    if label in cfgmod.SHORTCUTS:
        return cfgmod.SHORTCUTS[label]
    if label in cfgmod.UPSTREAM_KEYS:
        return (cfgmod.UPSTREAM_KEYS[label],)
    cfgmod.key_type(label)  # raises ConfigError naming the accepted keys
    return (label,)


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def choice(label: str, values: Iterable[Any]) -> Dimension:
    """A choice among `values` for `label`, each coerced to the key's type (repeats dropped)."""
    keys = label_keys(label)
    if cfgmod.key_type(keys[0]) is tuple:
        raise ConfigError(
            f"'{label}' is a list of files and cannot be swept; give it once "
            "(comma-separated files are one value)."
        )
    coerced: list[Any] = []
    for raw in values:
        value = cfgmod.coerce(keys[0], raw)
        if value not in coerced:
            coerced.append(value)
    if not coerced:
        raise ConfigError(
            f"No values given for '{label}'; expected a comma list such as 1e-4,1e-5."
        )
    return Dimension(label, keys, "choice", values=tuple(coerced))


def parse_axis(label: str, text: str) -> Dimension:
    """A comma list `v1,v2,...` for `label`."""
    return choice(label, _split_list(text))


def is_range(text: str) -> bool:
    return ":" in str(text)


def numeric_range(label: str, kind: str, lower: Any, upper: Any, shown: str) -> Dimension:
    """A range of type `kind` over [lower, upper], checked against the key's type."""
    keys = label_keys(label)
    key_kind = cfgmod.key_type(keys[0])
    if key_kind not in (int, float):
        raise ConfigError(
            f"'{label}={shown}' is a range, but '{label}' is not numeric; give a choice list "
            f"instead (ranges look like {_EXAMPLE})."
        )
    try:
        low, high = float(lower), float(upper)
    except (TypeError, ValueError):
        raise ConfigError(f"'{label}={shown}': the bounds must be numbers ({_EXAMPLE}).") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"'{label}={shown}': need finite bounds with low <= high.")
    if kind in ("loguniform", "lograndint") and low <= 0:
        raise ConfigError(f"'{label}={shown}': a log range needs positive bounds.")
    if key_kind is int and kind in ("uniform", "loguniform"):
        kind = "randint" if kind == "uniform" else "lograndint"
    if key_kind is float and kind in ("randint", "lograndint"):
        raise ConfigError(
            f"'{label}' takes real values; use the scale lin or log (uniform or loguniform)."
        )
    if kind in ("randint", "lograndint") and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"'{label}={shown}': an integer range needs integer bounds.")
    return Dimension(label, keys, kind, low, high)


def parse_range(label: str, text: str) -> Dimension:
    """`low:high[:scale]` with scale lin (default for floats), log, int or logint."""
    parts = [p.strip() for p in str(text).split(":")]
    if len(parts) not in (2, 3):
        raise ConfigError(
            f"'{label}={text}' is not a range: use low:high[:scale] with scale one of "
            f"{', '.join(RANDOM_SCALES)} (for example {_EXAMPLE})."
        )
    default = "int" if cfgmod.key_type(label_keys(label)[0]) is int else "lin"
    scale = parts[2] if len(parts) == 3 else default
    if scale not in SCALES:
        raise ConfigError(
            f"Unknown range scale '{scale}' for '{label}'; use one of {', '.join(RANDOM_SCALES)}."
        )
    return numeric_range(label, SCALES[scale], parts[0], parts[1], text)


def parse_values(
    values: Mapping[str, str | None], sets: Iterable[str]
) -> tuple[list[Dimension], dict[str, Any]]:
    """`{label: text}` (shortcuts) and `--set key=...` items: swept dimensions and fixed values.

    One value is a fixed override; a comma list is a choice; `low:high[:scale]` a range.
    """
    items: list[tuple[str, str]] = [(k, v) for k, v in values.items() if v is not None]
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value or key=v1,v2,...; got '{item}'.")
        key, text = item.split("=", 1)
        items.append((key.strip(), text))
    dims: list[Dimension] = []
    fixed: dict[str, Any] = {}
    for label, text in items:
        keys = label_keys(label)
        if cfgmod.key_type(keys[0]) is tuple:
            fixed.update({key: cfgmod.coerce(key, text) for key in keys})
            continue
        dim = parse_range(label, text) if is_range(text) else parse_axis(label, text)
        if dim.is_choice and len(dim.values) == 1:
            fixed.update({key: cfgmod.coerce(key, dim.values[0]) for key in keys})
            continue
        dims.append(dim)
    check_disjoint(dims, fixed)
    return dims, fixed


def check_disjoint(dims: Iterable[Dimension], fixed: Mapping[str, Any]) -> None:
    """ConfigError if two dimensions set one key, or a key is both swept and fixed."""
    seen: set[str] = set()
    for dim in dims:
        if set(dim.keys) & seen:
            raise ConfigError(f"'{dim.label}' sweeps a key that another flag already sweeps.")
        seen |= set(dim.keys)
    both = sorted(set(fixed) & seen)
    if both:
        raise ConfigError(f"'{both[0]}' is both swept and set to one value; give it once.")


def merge(file_dims: list[Dimension], cli_dims: list[Dimension]) -> list[Dimension]:
    """The file's dimensions with those the command line gives for the same keys replaced."""
    cli_keys = {key for dim in cli_dims for key in dim.keys}
    return [d for d in file_dims if not set(d.keys) & cli_keys] + cli_dims


# --- space files -------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"The search-space file '{path}' does not exist or is not a file.")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"The search-space file '{path}' is not valid {kind}: {exc}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"The search-space file '{path}' must hold a table (a JSON object).")
    return data


def _dimension(label: str, spec: Mapping[str, Any], path: Path) -> Dimension:
    kind = spec.get("type")
    where = f"'{label}' in {path.name}"
    if kind not in TYPES:
        raise ConfigError(
            f"{where} has type {kind!r}; use one of {', '.join(TYPES)} (Syne Tune's names)."
        )
    if kind == "choice":
        values = spec.get("values", spec.get("categories"))
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where} is a choice and needs a non-empty list 'values'.")
        return choice(label, values)
    if "lower" not in spec or "upper" not in spec:
        raise ConfigError(f"{where} is {kind} and needs 'lower' and 'upper'.")
    shown = f"{kind}({spec['lower']}, {spec['upper']})"
    return numeric_range(label, str(kind), spec["lower"], spec["upper"], shown)


def _search_defaults(section: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Rhea's equivalents of the Syne Tune scheduler, stop and tuner settings it knows."""
    out: dict[str, Any] = {}
    scheduler = section.get("scheduler")
    if isinstance(scheduler, Mapping):
        name = scheduler.get("name", "hyperband")
        if name == "hyperband":  # Syne Tune's default hyperband is asynchronous (ASHA)
            out["pruner"] = "asha"
            out["min_epochs"] = int(scheduler.get("grace_period", 1))
            out["eta"] = int(scheduler.get("reduction_factor", 3))
        searcher = scheduler.get("searcher")
        searchers = {"random": "random", "kde": "tpe", "bayesopt": "gp", "grid": "grid"}
        if searcher in searchers:
            out["search"] = searchers[str(searcher)]
    stop = section.get("stop")
    if isinstance(stop, Mapping) and stop.get("max_wallclock_time") is not None:
        out["budget_seconds"] = float(stop["max_wallclock_time"])
    tuner = section.get("tuner")
    if isinstance(tuner, Mapping) and tuner.get("n_workers") is not None:
        out["parallel"] = int(tuner["n_workers"])
    known = {"config_space", "metric", "mode", "max_resource_attr", "resource_attr", "report"}
    known |= {"scheduler", "stop", "tuner"}
    return out, sorted(k for k in section if k not in known)


def load_space_file(path: str | Path) -> SpaceFile:
    """Read a search space: upstream's `syne_tune` table, a parms dict holding one, or a bare
    `config_space` table. Plain values in the space are fixed settings (`epochs = 10`)."""
    file = Path(path).expanduser()
    data = _read(file)
    if isinstance(data.get("syne_tune"), Mapping):
        data = dict(data["syne_tune"])
    section = data if isinstance(data.get("config_space"), Mapping) else {"config_space": data}
    out = SpaceFile()
    for label, spec in section["config_space"].items():
        keys = label_keys(str(label))
        if isinstance(spec, Mapping):
            out.dimensions.append(_dimension(str(label), spec, file))
        else:
            out.fixed.update({key: cfgmod.coerce(key, spec) for key in keys})
    if not out.dimensions:
        raise ConfigError(f"The search-space file '{file}' has no dimension to search.")
    check_disjoint(out.dimensions, out.fixed)
    if section.get("metric") is not None:
        out.metric = str(section["metric"])
    out.mode = str(section.get("mode", "min"))
    if out.mode not in ("min", "max"):
        raise ConfigError(f"'mode' in {file.name} must be min or max; got '{out.mode}'.")
    resource = section.get("max_resource_attr")
    if resource is not None and resource != "epochs":
        raise ConfigError(
            f"'max_resource_attr' in {file.name} is '{resource}'; Rhea's trials are measured in "
            "epochs, so it must be 'epochs'."
        )
    out.max_resource_attr = None if resource is None else "epochs"
    if section.get("resource_attr") not in (None, "epoch"):
        raise ConfigError(
            f"'resource_attr' in {file.name} must be 'epoch' (Rhea reports once per epoch)."
        )
    out.defaults, out.ignored = _search_defaults(section)
    return out

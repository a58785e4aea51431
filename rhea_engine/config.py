"""TrainConfig: the frozen run configuration, TOML loading and `--set key=value` parsing.

Keys are the upstream `parms` names so existing settings carry over; Rhea's own keys
(optimizer, compile, autocast, num_threads, ...) follow them. Sources, later wins:
defaults < config file < CLI shortcuts < --set.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rhea_engine.errors import ConfigError

ACTIVATIONS = ("leaky_relu", "relu", "gelu", "silu", "tanh")
OPTIMIZERS = ("adamw", "adam", "sgd")
LEPTON_CONSERVATION = ("none", "direct", "ymatrix")
TASK_WEIGHTINGS = ("fixed", "learned", "pcgrad")
COMPILE_MODES = ("auto", "true", "false")
HEADS = ("shared", "stability", "growthrate", "density", "flux")
ARCHITECTURES = ("transfer", "equivariant")
SYMMETRIES = ("none", "box3d", "full")
_DEVICE_RE = re.compile(r"auto|cpu|cuda|cuda:\d{1,4}")
# Inclusive ranges of the integer keys: what a run can sensibly use, and always within what
# runs.db (SQLite, 64-bit integers) and the samplers (seeds) accept. An integer key missing
# here is held to the SQLite range.
INT_RANGES: dict[str, tuple[int, int]] = {
    "NF": (2, 3),
    "samples_per_database": (-1, 10**12),  # -1: all rows
    "random_samples_per_database": (-1, 10**12),
    "epoch_num_samples": (1, 10**12),
    "batch_size": (1, 10**9),
    "epochs": (1, 10**7),
    "output_every": (1, 10**7),
    "random_seed": (0, 2**32 - 1),
    "warmup_iters": (0, 10**9),
    "patience": (0, 10**9),
    "cooldown": (0, 10**9),
    **{f"width_{head}": (1, 2**16) for head in HEADS},
    **{f"nhidden_{head}": (0, 1000) for head in HEADS},
    "num_threads": (0, 4096),
}
_SQLITE_INT_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run. Field names are the upstream parms keys."""

    # data
    database_list: tuple[str, ...] = ()
    stable_database_list: tuple[str, ...] = ()
    NF: int = 3
    test_size: float = 0.1
    samples_per_database: int = -1  # -1: all rows; else the first N rows of each file
    random_samples_per_database: int = -1  # -1: all rows; else N rows drawn at random
    do_augment_permutation: bool = False
    # loop
    epoch_num_samples: int = 200_000
    batch_size: int = 4096
    epochs: int = 100
    output_every: int = 10
    random_seed: int = 42
    # optimizer and schedule
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    amsgrad: bool = False
    warmup_iters: int = 10
    patience: int = 20
    cooldown: int = 10
    factor: float = 0.5
    min_lr: float = 0.0
    # network
    architecture: str = "transfer"  # transfer | equivariant (e3nn)
    symmetry: str = "none"  # none | box3d (nu<->nubar x mu<->tau) | full (every flavor permutation)
    width_shared: int = 64
    width_stability: int = 32
    width_growthrate: int = 32
    width_density: int = 32
    width_flux: int = 32
    nhidden_shared: int = 1
    nhidden_stability: int = 1
    nhidden_growthrate: int = 1
    nhidden_density: int = 1
    nhidden_flux: int = 1
    dropout_probability: float = 0.0
    do_batchnorm: bool = True
    do_fdotu: bool = True
    activation: str = "leaky_relu"
    average_heavies_in_final_state: bool = True
    conserve_lepton_number: str = "direct"
    do_unphysical_check: bool = True
    # Rhea: also feed the Minkowski products of the flavour differences of the ELN four-vectors
    # (and their -N); resolves near-isotropic cells whose crossing the 21 products lose to rounding
    do_eln_inputs: bool = False
    # losses
    loss_multiplier_stable: float = 1.0
    loss_multiplier_ndens: float = 1.0
    loss_multiplier_fluxmag: float = 1.0
    loss_multiplier_direction: float = 1.0
    loss_multiplier_growthrate: float = 1.0
    loss_multiplier_unphysical: float = 10.0
    task_weighting: str = "fixed"
    # execution
    device: str = "auto"
    num_threads: int = 0  # 0: torch's default
    # torch.compile the training step: auto (on CUDA, and on the CPU for runs long enough to
    # repay the compilation), true or false
    compile: str = "auto"
    autocast_bf16: bool = False  # bf16 autocast of the trunk (CUDA only)
    heartbeat_seconds: float = 5.0

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        return from_dict({**self.to_dict(), **changes})

    def width(self, head: str) -> int:
        return int(getattr(self, f"width_{head}"))

    def nhidden(self, head: str) -> int:
        return int(getattr(self, f"nhidden_{head}"))

    def loss_multiplier(self, task: str) -> float:
        name = "stable" if task == "stability" else task
        return float(getattr(self, f"loss_multiplier_{name}"))


_FIELDS = {f.name: f for f in fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def keys() -> list[str]:
    """All accepted config keys, in declaration order."""
    return list(_FIELDS)


def default_config() -> TrainConfig:
    return TrainConfig()


def key_type(key: str) -> type:
    """The scalar type of a key: bool, int, float, str, or tuple for file lists."""
    _check_key(key)
    hint = _HINTS[key]
    if typing.get_origin(hint) is tuple:
        return tuple
    return hint  # type: ignore[no-any-return]


def _check_key(key: str) -> None:
    if key not in _FIELDS:
        close = [k for k in _FIELDS if k.lower() == key.lower() or key in k][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"Unknown config key '{key}'.{hint} Accepted keys: {', '.join(_FIELDS)}.")


def coerce(key: str, value: Any) -> Any:
    """Turn a value (often a string from the command line or TOML) into the key's type."""
    kind = key_type(key)
    try:
        if kind is tuple:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, Iterable):
                return tuple(str(v) for v in value)
            raise ValueError
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if kind is int:
            return _to_int(value)  # its range is checked with the whole config (_validate)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):  # nan, inf, and 1e400, which reads as inf
                raise ValueError
            return number
        if kind is str:
            if isinstance(value, bool):  # `compile = true` in TOML, or a config of an older Rhea
                return "true" if value else "false"
            if not isinstance(value, str):
                raise ValueError
            return value.strip()
    except (ValueError, TypeError):
        pass
    names: dict[type, str] = {
        tuple: "a comma-separated list of paths",
        bool: "true or false",
        float: "a float (a finite number)",
    }
    name = names.get(kind, f"a{'n' if kind is int else ''} {kind.__name__}")
    raise ConfigError(f"Config key '{key}' expects {name}; got {value!r}.")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            as_float = float(text)  # 1e5
        if not as_float.is_integer():
            raise ValueError
        return int(as_float)
    raise ValueError


def _check_int(key: str, value: int) -> int:
    """`value` if it lies in the key's range (INT_RANGES); ConfigError naming both if not."""
    low, high = INT_RANGES.get(key, _SQLITE_INT_RANGE)
    if not low <= value <= high:
        shown = (
            str(value) if value.bit_length() < 256 else f"an integer of {value.bit_length()} bits"
        )
        raise ConfigError(
            f"Config key '{key}' must be at least {low} and at most {high}; got {shown}."
        )
    return value


def from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build a validated TrainConfig; unknown keys and ill-typed values are ConfigErrors."""
    typed = {}
    for key, value in values.items():
        _check_key(key)
        typed[key] = coerce(key, value)
    return TrainConfig(**typed)


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"Config key '{key}' must be one of {', '.join(allowed)}; got '{value}'.")


def _validate(cfg: TrainConfig) -> None:
    _choice("activation", cfg.activation, ACTIVATIONS)
    _choice("optimizer", cfg.optimizer, OPTIMIZERS)
    _choice("conserve_lepton_number", cfg.conserve_lepton_number, LEPTON_CONSERVATION)
    _choice("task_weighting", cfg.task_weighting, TASK_WEIGHTINGS)
    _choice("architecture", cfg.architecture, ARCHITECTURES)
    _choice("symmetry", cfg.symmetry, SYMMETRIES)
    if cfg.symmetry == "full" and cfg.average_heavies_in_final_state and cfg.NF > 2:
        raise ConfigError(
            "Config key 'symmetry' = full treats every flavor alike, but "
            "'average_heavies_in_final_state' = true singles out mu and tau; set "
            "average_heavies_in_final_state = false, or use symmetry = box3d."
        )
    _choice("compile", cfg.compile, COMPILE_MODES)
    if not _DEVICE_RE.fullmatch(cfg.device):
        raise ConfigError(
            f"Config key 'device' must be auto, cpu, cuda or cuda:N; got '{cfg.device}'."
        )
    for key, hint in _HINTS.items():
        value = getattr(cfg, key)
        if hint is int:
            _check_int(key, value)
        elif hint is float and not math.isfinite(value):
            raise ConfigError(f"Config key '{key}' must be a finite number; got {value}.")
    if not 0.0 < cfg.test_size < 1.0:
        raise ConfigError(
            f"Config key 'test_size' must lie strictly between 0 and 1; got {cfg.test_size}."
        )
    if not 0.0 <= cfg.dropout_probability < 1.0:
        raise ConfigError(
            f"Config key 'dropout_probability' must lie in [0, 1); got {cfg.dropout_probability}."
        )
    if not cfg.learning_rate > 0:
        raise ConfigError(f"Config key 'learning_rate' must be positive; got {cfg.learning_rate}.")
    if not 0.0 < cfg.factor < 1.0:
        raise ConfigError(
            f"Config key 'factor' must lie strictly between 0 and 1; got {cfg.factor}."
        )
    for key in ["weight_decay", "min_lr"] + [
        f"loss_multiplier_{t}"
        for t in ("stable", "ndens", "fluxmag", "direction", "growthrate", "unphysical")
    ]:
        if getattr(cfg, key) < 0:
            raise ConfigError(f"Config key '{key}' must be 0 or more; got {getattr(cfg, key)}.")
    if cfg.heartbeat_seconds <= 0:
        raise ConfigError(
            f"Config key 'heartbeat_seconds' must be positive; got {cfg.heartbeat_seconds}."
        )


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file (flat keys, or under a [train] table)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Config file '{file}' does not exist or is not a file.")
    try:
        data = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file '{file}' is not valid TOML: {exc}.") from exc
    if "train" in data and isinstance(data["train"], dict):
        data = {**{k: v for k, v in data.items() if k != "train"}, **data["train"]}
    for key in data:
        _check_key(key)
    return data


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """Parse `key=value` strings into typed values, checking each key."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value; got '{item}'.")
        key, value = item.split("=", 1)
        key = key.strip()
        _check_key(key)
        out[key] = coerce(key, value)
    return out


SHORTCUTS = {
    "lr": ("learning_rate",),
    "epochs": ("epochs",),
    "batch_size": ("batch_size",),
    "seed": ("random_seed",),
    "device": ("device",),
    "width": tuple(f"width_{h}" for h in HEADS),
    "nhidden": tuple(f"nhidden_{h}" for h in HEADS),
    "data": ("database_list",),
    "stable_data": ("stable_database_list",),
    "architecture": ("architecture",),
    "symmetry": ("symmetry",),
}


# Upstream parms names of settings Rhea has under another name, as upstream's parameters.txt
# and Syne Tune search spaces write them. A parameter that already has Rhea's own name wins over
# a renamed one (not-main writes both `weight_decay`, which its optimizer uses, and
# `adamw.weight_decay`).
UPSTREAM_KEYS = {
    "op": "optimizer",
    "lr": "learning_rate",
    "seed": "random_seed",
    "loader.batch_size": "batch_size",
    "weightedrandomsampler.epoch_num_samples": "epoch_num_samples",
    "adamw.weight_decay": "weight_decay",
    "adamw.amsgrad": "amsgrad",
    # main's fixed task weights multiply the task losses as Rhea's loss multipliers do
    "task_weight_stability": "loss_multiplier_stable",
    "task_weight_growthrate": "loss_multiplier_growthrate",
    "task_weight_unphysical": "loss_multiplier_unphysical",
}


def expand_shortcuts(shortcuts: Mapping[str, Any]) -> dict[str, Any]:
    """Map CLI shortcut values (None = not given) onto config keys."""
    out: dict[str, Any] = {}
    for name, value in shortcuts.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        for key in SHORTCUTS[name]:
            out[key] = coerce(key, value)
    return out


def resolve(
    config_file: str | Path | None = None,
    shortcuts: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """defaults < base < config file < CLI shortcuts < --set, validated."""
    values: dict[str, Any] = dict(base or {})
    if config_file is not None:
        values.update(load_toml(config_file))
    values.update(expand_shortcuts(shortcuts or {}))
    values.update(parse_set(sets))
    return from_dict(values)

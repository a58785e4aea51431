"""The new-run form's fields and what they ask for: one run, or a sweep (comma lists), here or
on Slurm. Plain data and checks, no Textual: the form screen and its tests share them.

A field holding a comma list (`1e-3,3e-4`) makes the form a grid sweep through the engine's
sweep path (every combination, runs NAME-1, NAME-2, ...); "more" takes any config key as
`key=value` pairs separated by spaces (`weight_decay=1e-5 activation=gelu`), lists too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine import config as rhea_config
from rhea_engine.errors import ConfigError, RheaError
from rhea_engine.runs.rundir import check_run_name

# (field id, label, CLI shortcut, config keys it sets); "samples" and "more" go through --set
FIELDS = (
    ("name", "name", None, ()),
    ("lr", "learning rate", "lr", ("learning_rate",)),
    ("epochs", "epochs", "epochs", ("epochs",)),
    ("batch_size", "batch size", "batch_size", ("batch_size",)),
    ("samples", "samples/epoch", None, ("epoch_num_samples",)),
    ("width", "widths", "width", tuple(f"width_{h}" for h in rhea_config.HEADS)),
    ("nhidden", "depth", "nhidden", tuple(f"nhidden_{h}" for h in rhea_config.HEADS)),
    ("architecture", "architecture", "architecture", ("architecture",)),
    ("symmetry", "symmetry", "symmetry", ("symmetry",)),
    ("seed", "seed", "seed", ("random_seed",)),
    ("device", "device", "device", ("device",)),
    ("data", "data files", "data", ("database_list",)),
    ("stable_data", "stable data", "stable_data", ("stable_database_list",)),
    ("more", "more", None, ()),
)
FILE_FIELDS = ("data", "stable_data")  # commas separate files there, not sweep values
PLACEHOLDERS = {
    "name": "optional: run1, run2, … (a sweep: sweep1, …)",
    "lr": "1e-3, or a sweep: 1e-3,3e-4",
    "data": "comma-separated .h5; empty: synthetic default",
    "stable_data": "comma-separated .h5 (optional)",
    "device": "auto, cpu, cuda or cuda:N",
    "more": "key=value …, e.g. weight_decay=1e-5",
    "architecture": ", ".join(rhea_config.ARCHITECTURES),
    "symmetry": ", ".join(rhea_config.SYMMETRIES),
}
SLURM_FIELDS = (("partition", "partition"), ("time", "time limit"))
_KEY_IN_MESSAGE = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)'")


def form_defaults() -> dict[str, str]:
    cfg = rhea_config.default_config()
    return {
        "name": "",
        "lr": f"{cfg.learning_rate:g}",
        "epochs": str(cfg.epochs),
        "batch_size": str(cfg.batch_size),
        "samples": str(cfg.epoch_num_samples),
        "width": str(cfg.width_shared),
        "nhidden": str(cfg.nhidden_shared),
        "architecture": cfg.architecture,
        "symmetry": cfg.symmetry,
        "seed": str(cfg.random_seed),
        "device": cfg.device,
        "data": "",
        "stable_data": "",
        "more": "",
    }


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def clone_values(config: dict[str, Any]) -> dict[str, str]:
    """The form filled in from a run's config: its fields, and every other key it changed
    from the defaults as `key=value` under "more" (heads of different sizes too)."""
    values = form_defaults()
    shown: set[str] = set()
    direct = {"lr": "learning_rate", "epochs": "epochs", "batch_size": "batch_size"}
    direct |= {"samples": "epoch_num_samples", "seed": "random_seed", "device": "device"}
    direct |= {"architecture": "architecture", "symmetry": "symmetry"}
    for field_id, key in direct.items():
        if key in config:
            values[field_id] = _text(config[key])
            shown.add(key)
    for field_id, prefix in (("width", "width"), ("nhidden", "nhidden")):
        sizes = {config.get(f"{prefix}_{h}") for h in rhea_config.HEADS}
        if len(sizes) == 1 and None not in sizes:
            values[field_id] = str(sizes.pop())
            shown |= {f"{prefix}_{h}" for h in rhea_config.HEADS}
    for field_id, key in (("data", "database_list"), ("stable_data", "stable_database_list")):
        values[field_id] = ",".join(str(p) for p in config.get(key) or [])
        shown.add(key)
    defaults = rhea_config.default_config().to_dict()
    more = [
        f"{key}={_text(value)}"
        for key, value in config.items()
        if key in defaults and key not in shown and value != defaults[key]
    ]
    values["more"] = " ".join(more)
    return values


@dataclass
class FormRequest:
    """What the form asks for, read from its text fields."""

    name: str | None
    shortcuts: dict[str, str | None]  # CLI shortcut -> text (comma lists in a sweep)
    sets: list[str] = field(default_factory=list)  # key=value (samples/epoch and "more")
    sweep: bool = False  # a field holds a list: a grid sweep
    slurm: bool = False
    partition: str | None = None
    time_limit: str | None = None

    @property
    def submitted(self) -> bool:
        """Started through the engine's sweep path (a sweep, or a run on Slurm)."""
        return self.sweep or self.slurm


class FieldError(RheaError):
    """A value the form cannot use, with the field it belongs to."""

    def __init__(self, field_id: str | None, message: str) -> None:
        super().__init__(message, "Form")
        self.field = field_id


def field_of(message: str, sets: list[str] = ()) -> str | None:  # type: ignore[assignment]
    """The form field an engine message is about (it names a config key in quotes): a
    field's own key, else "more" for a key typed there or any other config key."""
    typed = {pair.split("=", 1)[0].strip() for pair in sets}
    for key in _KEY_IN_MESSAGE.findall(message):
        for field_id, _, _, keys in FIELDS:
            if key in keys:
                return field_id
        if key in typed or key in rhea_config.keys():
            return "more"
    return None


def read_form(values: dict[str, str], slurm: dict[str, str] | None = None) -> FormRequest:
    """The request the fields make; FieldError for what can be told without the engine."""
    name = values.get("name", "").strip() or None
    if name is not None:
        try:
            check_run_name(name)
        except RheaError as exc:
            raise FieldError("name", exc.message) from None
    for field_id in FILE_FIELDS:
        for path in (p.strip() for p in values.get(field_id, "").split(",")):
            if path and not Path(path).expanduser().is_file():
                raise FieldError(
                    field_id, f"The data file '{path}' does not exist or is not a file."
                )
    sets = []
    samples = values.get("samples", "").strip()
    if samples:
        sets.append(f"epoch_num_samples={samples}")
    for pair in values.get("more", "").split():
        if "=" not in pair or pair.startswith("="):
            raise FieldError("more", f"'{pair}' is not key=value (for example weight_decay=1e-5).")
        sets.append(pair)
    shortcuts = {
        shortcut: values.get(field_id, "").strip() or None
        for field_id, _, shortcut, _ in FIELDS
        if shortcut is not None
    }
    listed = [v for k, v in shortcuts.items() if k not in FILE_FIELDS and v and "," in v]
    sweep = bool(listed) or any("," in pair.split("=", 1)[1] for pair in sets)
    request = FormRequest(name, shortcuts, sets, sweep)
    if slurm is not None:
        request.slurm = True
        request.partition = slurm.get("partition", "").strip() or None
        request.time_limit = slurm.get("time", "").strip() or None
        if not request.partition:
            raise FieldError("partition", "A Slurm run needs a partition.")
        if not request.time_limit:
            raise FieldError("time", "A Slurm run needs a time limit, HH:MM:SS.")
    return request


def resolve_run(request: FormRequest) -> dict[str, Any]:
    """The validated config of a single run (FieldError naming the field otherwise)."""
    # `full` treats every flavor alike, so the form does not average the heavies with it
    full = request.shortcuts.get("symmetry") == "full"
    base = {"average_heavies_in_final_state": False} if full else {}
    try:
        return rhea_config.resolve(
            shortcuts=request.shortcuts, sets=request.sets, base=base
        ).to_dict()
    except ConfigError as exc:
        raise FieldError(field_of(exc.message, request.sets), exc.message) from None

"""Readers of upstream run folders (parameters.txt, loss.dat, trial_*.json) and the key mapping.

Both upstream branches write `parameters.txt` as `key + " = " + str(value)` lines (keys may
hold dots such as `loader.batch_size`; values are Python reprs: numbers, lists of paths,
classes, functions, e3nn irreps) and `loss.dat` as a header of `N:name` fields each followed
by a tab, then rows whose epoch is `{:<12d}` (no tab after it) and whose values are
`{:<12.3e}` each followed by a tab. Main's `run_trial.py` adds `trial_config_resolved.json`
(the same parameters as JSON) and `trial_summary.json` (final and best figures). Nothing here
writes; nothing read is ever evaluated.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, ImportFormatError
from rhea_engine.vocabulary import TASKS

PARAMETERS_FILE = "parameters.txt"
LOSS_FILE = "loss.dat"
TRIAL_CONFIG_FILE = "trial_config_resolved.json"
TRIAL_SUMMARY_FILE = "trial_summary.json"
RUN_FILES = (PARAMETERS_FILE, LOSS_FILE, TRIAL_CONFIG_FILE, TRIAL_SUMMARY_FILE)
CHECKPOINT_RE = re.compile(r"^model(\d*)_([A-Za-z0-9:]+)\.pt$")
_HEADER_RE = re.compile(r"^(\d+):(\S+)$")

#: Upstream activation classes and optimizers, by the names that appear in their reprs.
_ACTIVATIONS = {"leakyrelu": "leaky_relu", "relu": "relu", "gelu": "gelu", "silu": "silu"}
_ACTIVATIONS["tanh"] = "tanh"
_OPTIMIZERS = {"adamw": "adamw", "adam": "adam", "sgd": "sgd"}
#: Upstream switches that together decide Rhea's `task_weighting`.
_TASK_WEIGHTING_SWITCHES = {
    "use_pcgrad": "pcgrad",
    "do_learn_task_weights": "learned",
    "learn_task_weights": "learned",
}
#: Parameters or loss.dat columns that only upstream main writes (e3nn model, Box3D residual).
_MAIN_MARKERS = ("irreps_hidden", "tensor_product_class", "F4_train_loss", "validation_score")
_NOT_MAIN_MARKERS = ("width_shared", "ndens_train_loss", "stability_train_loss")


@dataclass
class UpstreamRun:
    """One parsed upstream run folder."""

    folder: Path
    config: dict[str, Any]  # Rhea config keys (validated)
    unmapped: dict[str, Any] = field(default_factory=dict)  # upstream name -> verbatim value
    renamed: dict[str, str] = field(default_factory=dict)  # upstream name -> Rhea key
    columns: list[str] = field(default_factory=list)  # loss.dat columns, epoch included
    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)  # metrics computed, not read
    summary: dict[str, Any] | None = None  # trial_summary.json
    branch: str = "unknown"  # which upstream writer made it: main, not-main or unknown
    notes: list[str] = field(default_factory=list)

    @property
    def data(self) -> list[dict[str, str]]:
        """The data files the run recorded, asymptotic then stable (paths as upstream wrote)."""
        out = [{"path": p, "kind": "asymptotic"} for p in self.config.get("database_list", ())]
        out += [{"path": p, "kind": "stable"} for p in self.config.get("stable_database_list", ())]
        return out


def is_run_folder(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path} is not a text file ({exc}).") from None
    except OSError as exc:
        raise ImportFormatError(f"{path} cannot be read ({exc.strerror or exc}).") from None


def literal(text: str) -> Any:
    """A parameter value: a Python literal where it is one (never evaluated), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_parameters(path: Path) -> dict[str, str]:
    """`key = value` lines as upstream writes them; the raw value texts by key, verbatim.

    Any key is accepted (dots, dashes, ...). A line that starts with white space, or holds no
    `=`, continues the value above it (a multi-line repr).
    """
    out: dict[str, str] = {}
    current: str | None = None
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip() or (current is None and line.lstrip().startswith("#")):
            continue
        if current is not None and (line[:1].isspace() or "=" not in line):
            out[current] += "\n" + line.rstrip()
            continue
        if " = " in line:
            key, _, value = line.partition(" = ")
        elif "=" in line:
            key, _, value = line.partition("=")
        else:
            raise ImportFormatError(
                f"{path}, line {number}: expected 'key = value', found {line.strip()[:60]!r}."
            )
        current = key.strip()
        out[current] = value.strip()
    return out


def parse_loss(path: Path) -> tuple[list[str], list[tuple[int, dict[str, float]]], bool]:
    """loss.dat: (column names, per-epoch metrics, whether an unfinished last line was left out).

    Fields are split on any white space: upstream pads the epoch with spaces and no tab.
    """
    text = _text(path)
    lines = text.splitlines()
    names: list[str] | None = None
    rows: list[tuple[int, dict[str, float]]] = []
    partial = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip().lstrip("#").strip()
        if not stripped:
            continue
        fields = stripped.split()
        if names is None:
            names = _header(path, number, fields)
            continue
        if len(fields) != len(names):
            if number == len(lines) and not text.endswith("\n") and len(fields) < len(names):
                partial = True  # the writer was stopped in the middle of this line
                break
            raise ImportFormatError(
                f"{path}, line {number}: {len(fields)} values, but the header names "
                f"{len(names)} columns."
            )
        values: dict[str, float] = {}
        for name, item in zip(names, fields, strict=True):
            try:
                values[name] = float(item)
            except ValueError:
                raise ImportFormatError(
                    f"{path}, line {number}: column '{name}' holds {item[:30]!r}, not a number."
                ) from None
        epoch_value = values.pop("epoch", float(len(rows) + 1))
        if not math.isfinite(epoch_value) or not float(epoch_value).is_integer():
            raise ImportFormatError(
                f"{path}, line {number}: the epoch {epoch_value} is not an integer."
            )
        rows.append((int(epoch_value), values))
    if names is None:
        raise ImportFormatError(
            f"{path} is empty: expected a header line such as '1:epoch\\t2:...'."
        )
    return names, rows, partial


def _header(path: Path, number: int, fields: list[str]) -> list[str]:
    names = []
    for position, item in enumerate(fields, start=1):
        match = _HEADER_RE.match(item)
        if match is None or int(match.group(1)) != position:
            raise ImportFormatError(
                f"{path}, line {number}: expected a header of tab-separated 'N:name' columns "
                f"(1:epoch, 2:..., ...), found {item[:40]!r} in column {position}."
            )
        names.append(match.group(2))
    if len(set(names)) != len(names):
        raise ImportFormatError(f"{path}, line {number}: the header repeats a column name.")
    return names


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(_text(path))
    except ValueError as exc:
        raise ImportFormatError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise ImportFormatError(f"{path} must hold a JSON object, not {type(value).__name__}.")
    return value


def _optional_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    """A trial_*.json file if present and whole; a damaged one is noted and left out.

    Upstream main's run_trial.py stops writing trial_summary.json at the first tensor value
    (the *_max figures), so a real summary is often cut short: that must not stop an import.
    """
    if not path.is_file():
        return None
    try:
        return read_json_object(path)
    except ImportFormatError as exc:
        notes.append(f"{path.name} was left out: {exc.message}")
        return None


def _short_name(value: Any) -> str:
    """'adamw' from "<class 'torch.optim.adamw.AdamW'>" or 'torch.optim.adamw.AdamW'."""
    text = str(value).strip().strip("<>").split(" at 0x")[0]
    return re.sub(r"[^a-z]", "", text.lower().rsplit(".", 1)[-1])


def _translate(key: str, value: Any) -> Any:
    """The Rhea value of a Rhea-named setting, or None where it has none."""
    if key == "optimizer":
        name = _short_name(value)
        matches = [v for k, v in _OPTIMIZERS.items() if name.endswith(k)]
        return max(matches, key=len) if matches else None
    if key == "activation":
        return _ACTIVATIONS.get(_short_name(value))
    if key == "conserve_lepton_number" and isinstance(value, bool):
        return "direct" if value else "none"  # main's switch: correct the final ELN, or not
    if cfgmod.key_type(key) is tuple and isinstance(value, str):
        return [value]
    return value


def _accept(key: str, value: Any) -> Any:
    """`value` coerced and range-checked for `key` alone, or None if Rhea refuses it."""
    try:
        coerced = cfgmod.coerce(key, value)
        cfgmod.from_dict({key: coerced})
    except ConfigError:
        return None
    return coerced


def map_parameters(
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(Rhea config, parameters kept verbatim, renamed upstream key -> Rhea key).

    Values may be raw texts (parameters.txt) or JSON values (trial_config_resolved.json).
    Nothing is refused: what Rhea cannot take is kept verbatim.
    """
    known = set(cfgmod.keys())
    mapped: dict[str, Any] = {}
    unmapped: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    ordered = sorted(params.items(), key=lambda kv: kv[0] not in known)  # Rhea's own names first
    for key, raw in ordered:
        value = literal(raw) if isinstance(raw, str) else raw
        target = cfgmod.UPSTREAM_KEYS.get(key, key)
        if target not in known or target in mapped:
            unmapped[key] = raw
            continue
        translated = _translate(target, value)
        accepted = None if translated is None else _accept(target, translated)
        if accepted is None:
            unmapped[key] = raw
            continue
        mapped[target] = accepted
        if target != key:
            renamed[key] = target
    weighting = _task_weighting(params)
    if weighting is not None and "task_weighting" not in mapped:
        mapped["task_weighting"] = weighting
        for key in _TASK_WEIGHTING_SWITCHES:
            if key in params:
                unmapped.pop(key, None)
                renamed[key] = "task_weighting"
    return _consistent(mapped, unmapped, params), unmapped, renamed


def _task_weighting(params: dict[str, Any]) -> str | None:
    """pcgrad or learned where an upstream switch says so, fixed where all are off."""
    seen = False
    for key, weighting in _TASK_WEIGHTING_SWITCHES.items():
        if key not in params:
            continue
        raw = params[key]
        value = literal(raw) if isinstance(raw, str) else raw
        if not isinstance(value, bool):
            return None
        seen = True
        if value:
            return weighting
    return "fixed" if seen else None


def _consistent(
    mapped: dict[str, Any], unmapped: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Keys added one at a time; one the whole config refuses is kept verbatim instead."""
    try:
        cfgmod.from_dict(mapped)
        return mapped
    except ConfigError:
        pass
    accepted: dict[str, Any] = {}
    for key, value in mapped.items():
        try:
            cfgmod.from_dict({**accepted, key: value})
            accepted[key] = value
        except ConfigError:
            source = next((k for k in params if cfgmod.UPSTREAM_KEYS.get(k, k) == key), key)
            unmapped[source] = params.get(source, value)
    return accepted


def derive_totals(config: dict[str, Any], rows: list[tuple[int, dict[str, float]]]) -> list[str]:
    """Fill train_loss/test_loss as the multiplier-weighted sum of task losses where missing."""
    derived = []
    full = cfgmod.from_dict(config)
    for split in ("train", "test"):
        total = f"{split}_loss"
        parts = [(f"{task}_{split}_loss", full.loss_multiplier(task)) for task in TASKS]
        if not rows or total in rows[0][1] or not any(p in rows[0][1] for p, _ in parts):
            continue
        for _, metrics in rows:
            metrics[total] = sum(w * metrics[p] for p, w in parts if p in metrics)
        derived.append(total)
    return derived


def _branch(params: dict[str, Any], columns: list[str], folder: Path) -> str:
    names = set(params) | set(columns)
    if any(m in names for m in _MAIN_MARKERS) or (folder / TRIAL_SUMMARY_FILE).is_file():
        return "main"
    if any(m in names for m in _NOT_MAIN_MARKERS):
        return "not-main"
    return "unknown"


def parse_run_folder(folder: Path) -> UpstreamRun:
    """Read one upstream run folder completely (no writes)."""
    params: dict[str, Any] = {}
    notes: list[str] = []
    trial_config = _optional_json(folder / TRIAL_CONFIG_FILE, notes)
    params.update(trial_config or {})
    if (folder / PARAMETERS_FILE).is_file():  # the verbatim texts win over their JSON forms
        params.update(parse_parameters(folder / PARAMETERS_FILE))
    config, unmapped, renamed = map_parameters(params)
    columns: list[str] = []
    rows: list[tuple[int, dict[str, float]]] = []
    run = UpstreamRun(folder=folder, config=config, unmapped=unmapped, renamed=renamed)
    run.notes = notes
    if (folder / LOSS_FILE).is_file():
        columns, rows, partial = parse_loss(folder / LOSS_FILE)
        if partial:
            run.notes.append(f"the unfinished last line of {LOSS_FILE} was left out")
    run.columns, run.epochs = columns, rows
    run.summary = _optional_json(folder / TRIAL_SUMMARY_FILE, run.notes)
    run.derived = derive_totals(config, rows)
    run.branch = _branch(params, columns, folder)
    for item in sorted(folder.iterdir()):
        match = CHECKPOINT_RE.match(item.name)
        if match and item.is_file():
            epoch = int(match.group(1)) if match.group(1) else (rows[-1][0] if rows else 0)
            run.checkpoints.append((epoch, item))
    run.checkpoints.sort(key=lambda pair: (pair[0], pair[1].name))
    return run

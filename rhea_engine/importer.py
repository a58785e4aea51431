"""Import upstream run folders (parameters.txt, loss.dat, model*_*.pt) as completed runs.

A folder with `parameters.txt` or `loss.dat` is one run; a folder holding several such
folders becomes a sweep named after it. Upstream parameter names that are Rhea config keys
(most are: DESIGN.md §2) map 1:1, a few renamed ones are translated, and anything else is
kept in the run's meta. Every file is parsed before anything is written.
"""

from __future__ import annotations

import ast
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, ImportFormatError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter, read_config, write_config
from rhea_engine.vocabulary import TASKS

PARAMETERS_FILE = "parameters.txt"
LOSS_FILE = "loss.dat"
_CHECKPOINT_RE = re.compile(r"^model(\d*)_([A-Za-z0-9:]+)\.pt$")
_HEADER_RE = re.compile(r"^(\d+):(\S+)$")
_SANITIZE_RE = re.compile(r"[^A-Za-z0-9_.-]+")

# upstream activation classes and optimizers, by the names that appear in parameters.txt
_ACTIVATIONS = {
    "leakyrelu": "leaky_relu",
    "relu": "relu",
    "gelu": "gelu",
    "silu": "silu",
    "tanh": "tanh",
}
_OPTIMIZERS = {"adamw": "adamw", "adam": "adam", "sgd": "sgd"}
_RENAMED = {
    "op": "optimizer",
    "lr": "learning_rate",
    "seed": "random_seed",
    "learn_task_weights": "task_weighting",
    "do_learn_task_weights": "task_weighting",
}


@dataclass
class UpstreamRun:
    """One parsed upstream run folder."""

    folder: Path
    config: dict[str, Any]  # Rhea config keys (validated)
    unmapped: dict[str, str] = field(default_factory=dict)  # upstream name -> raw value
    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)  # metrics computed, not read


def is_run_folder(path: Path) -> bool:
    return (path / PARAMETERS_FILE).is_file() or (path / LOSS_FILE).is_file()


def _literal(text: str) -> Any:
    """A parameter value: a Python literal where it is one (never evaluated), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_parameters(path: Path) -> dict[str, str]:
    """`key = value` lines (blank lines and # comments skipped); raw value texts by key."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path} is not a text file ({exc}).") from None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "=" not in stripped:
            raise ImportFormatError(
                f"{path}, line {number}: expected 'key = value', found {stripped[:60]!r}."
            )
        key, value = (part.strip() for part in stripped.split("=", 1))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ImportFormatError(
                f"{path}, line {number}: '{key[:40]}' is not a parameter name; expected "
                "'key = value'."
            )
        out[key] = value
    return out


def _translate(key: str, raw: str) -> tuple[str, Any] | None:
    """(config key, value) for an upstream parameter, or None if Rhea has no such setting."""
    value = _literal(raw)
    key = _RENAMED.get(key, key)
    if key == "optimizer":
        name = re.sub(r"[^a-z]", "", str(value).lower().rsplit(".", 1)[-1])
        matches = [v for k, v in _OPTIMIZERS.items() if name.endswith(k)]
        return (key, max(matches, key=len)) if matches else None
    if key == "activation":
        name = re.sub(r"[^a-z]", "", str(value).lower().rsplit(".", 1)[-1])
        return (key, _ACTIVATIONS[name]) if name in _ACTIVATIONS else None
    if key == "task_weighting" and isinstance(value, bool):
        return (key, "learned" if value else "fixed")
    if key not in cfgmod.keys():
        return None
    if cfgmod.key_type(key) is tuple and isinstance(value, str):
        value = [value]
    return (key, value)


def map_parameters(params: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Config values Rhea understands, and the rest (unknown or not acceptable) kept raw."""
    mapped: dict[str, Any] = {}
    unmapped: dict[str, str] = {}
    for key, raw in params.items():
        translated = _translate(key, raw)
        if translated is None:
            unmapped[key] = raw
            continue
        name, value = translated
        try:
            mapped[name] = cfgmod.coerce(name, value)
            cfgmod.from_dict({name: mapped[name]})  # range checks of this key alone
        except ConfigError:
            mapped.pop(name, None)
            unmapped[key] = raw
    return mapped, unmapped


def parse_loss(path: Path) -> tuple[list[str], list[tuple[int, dict[str, float]]]]:
    """A tab-separated loss.dat with an `N:name` header; (column names, per-epoch metrics)."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path} is not a text file ({exc}).") from None
    names: list[str] | None = None
    rows: list[tuple[int, dict[str, float]]] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip().lstrip("#").strip()
        if not stripped:
            continue
        fields = stripped.split("\t") if "\t" in stripped else stripped.split()
        if names is None:
            names = []
            for position, item in enumerate(fields, start=1):
                match = _HEADER_RE.match(item.strip())
                if match is None or int(match.group(1)) != position:
                    raise ImportFormatError(
                        f"{path}, line {number}: expected a header of tab-separated "
                        f"'N:name' columns (1:epoch, 2:..., ...), found {item.strip()[:40]!r} "
                        f"in column {position}."
                    )
                names.append(match.group(2))
            if len(set(names)) != len(names):
                raise ImportFormatError(f"{path}, line {number}: the header repeats a column name.")
            continue
        if len(fields) != len(names):
            raise ImportFormatError(
                f"{path}, line {number}: {len(fields)} values, but the header names {len(names)} columns."
            )
        values: dict[str, float] = {}
        for name, text in zip(names, fields, strict=True):
            try:
                values[name] = float(text)
            except ValueError:
                raise ImportFormatError(
                    f"{path}, line {number}: column '{name}' holds {text.strip()[:30]!r}, not a number."
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
    return names, rows


def _derive_totals(config: dict[str, Any], rows: list[tuple[int, dict[str, float]]]) -> list[str]:
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


def parse_run_folder(folder: Path) -> UpstreamRun:
    """Read one upstream run folder completely (no writes)."""
    params_file, loss_file = folder / PARAMETERS_FILE, folder / LOSS_FILE
    params = parse_parameters(params_file) if params_file.is_file() else {}
    config, unmapped = map_parameters(params)
    _, rows = parse_loss(loss_file) if loss_file.is_file() else ([], [])
    run = UpstreamRun(folder=folder, config=config, unmapped=unmapped, epochs=rows)
    run.derived = _derive_totals(config, rows)
    for item in sorted(folder.iterdir()):
        match = _CHECKPOINT_RE.match(item.name)
        if match and item.is_file():
            epoch = int(match.group(1)) if match.group(1) else (rows[-1][0] if rows else 0)
            run.checkpoints.append((epoch, item))
    run.checkpoints.sort(key=lambda pair: (pair[0], pair[1].name))
    return run


def find_run_folders(directory: Path) -> tuple[list[Path], bool]:
    """(run folders, True if `directory` is a group of runs rather than one run)."""
    if not directory.is_dir():
        raise ImportFormatError(f"{directory} is not a directory.")
    if is_run_folder(directory):
        return [directory], False
    folders = sorted(p for p in directory.iterdir() if p.is_dir() and is_run_folder(p))
    if not folders:
        raise ImportFormatError(
            f"{directory} holds no upstream run folders: expected {PARAMETERS_FILE} or "
            f"{LOSS_FILE} in it or in its subfolders."
        )
    return folders, True


def sanitize_name(text: str, limit: int = 48) -> str:
    name = _SANITIZE_RE.sub("-", text).strip("-.")[:limit].strip("-.")
    return name or "imported"


def import_runs(
    store: Any, directory: str | Path, name: str | None = None, copy_checkpoints: bool = True
) -> list[str]:
    """Import `directory` into `store`; returns the new run names (a sweep for a group)."""
    from rhea_engine.sweep import check_sweep_name

    source = Path(directory).expanduser().resolve()
    folders, grouped = find_run_folders(source)
    parsed = [parse_run_folder(folder) for folder in folders]
    existing = {row.name for row in store.list_runs()}
    if grouped:
        sweep = check_sweep_name(name or sanitize_name(source.name))
        if sweep in {s["name"] for s in store.sweeps()}:
            raise ImportFormatError(
                f"A sweep named '{sweep}' already exists (was {source} imported before?); "
                "choose another name with --name."
            )
        names = [f"{sweep}-{i}" for i in range(1, len(parsed) + 1)]
    else:
        sweep = None
        names = [name or sanitize_name(source.name, 64)]
    taken = [n for n in names if n in existing]
    if taken:
        raise ImportFormatError(
            f"A run named '{taken[0]}' already exists; choose another name with --name."
        )
    created: list[str] = []
    try:
        if sweep is not None:
            store.create_sweep(
                sweep,
                {"kind": "import", "source": str(source), "folders": [f.name for f in folders]},
            )
        for run_name, upstream in zip(names, parsed, strict=True):
            _write_run(store, run_name, sweep, upstream, copy_checkpoints, created)
    except BaseException:
        for run_name in created:
            store.delete_run(run_name, force=True)
        raise
    refresh(store, created)
    return created


def _write_run(
    store: Any,
    run_name: str,
    sweep: str | None,
    upstream: UpstreamRun,
    copy: bool,
    created: list[str],
) -> None:
    config = cfgmod.from_dict(upstream.config).to_dict()
    row = store.create_run(config, name=run_name, sweep=sweep, status="queued")
    created.append(row.name)
    path = Path(row.path)
    meta = read_config(path).get("meta", {})
    meta["imported_from"] = str(upstream.folder)
    if upstream.unmapped:
        meta["upstream_parameters"] = upstream.unmapped
    if upstream.derived:
        meta["derived_metrics"] = upstream.derived
    write_config(path, config, meta)
    last_epoch = upstream.epochs[-1][0] if upstream.epochs else 0
    with RunWriter(path) as writer:
        writer.start(
            pid=None,
            host=None,
            device=config["device"],
            slurm_job_id=None,
            total_epochs=int(config.get("epochs") or last_epoch),
            data=[],
            imported_from=str(upstream.folder),
        )
        for epoch, metrics in upstream.epochs:
            writer.epoch(epoch, metrics)
        for epoch, source in upstream.checkpoints:
            if copy:
                target = path / "checkpoints" / source.name
                shutil.copy2(source, target)
            else:
                target = source
            writer.checkpoint(epoch, target, "upstream")
        writer.status("completed")

"""Import upstream run folders (parameters.txt, loss.dat, trial_*.json, model*_*.pt) as runs.

A folder with one of those files is one run; a folder holding several such folders becomes a
sweep named after it. Parameters Rhea knows map onto its config keys (config.UPSTREAM_KEYS);
every other parameter is kept verbatim in the run's meta, and every loss.dat column becomes a
metric under its upstream name. Every file is parsed before anything is written.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from rhea_engine import config as cfgmod
from rhea_engine.errors import ImportFormatError, RheaError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter, read_config, write_config
from rhea_engine.upstream_runs import (
    LOSS_FILE,
    PARAMETERS_FILE,
    UpstreamRun,
    is_run_folder,
    parse_loss,
    parse_parameters,
    parse_run_folder,
)

__all__ = [
    "UPSTREAM_CHECKPOINT_KIND",
    "find_run_folders",
    "import_runs",
    "imported_metadata",
    "parse_loss",
    "parse_parameters",
    "parse_run_folder",
]

#: Checkpoint kind of an upstream TorchScript model file brought in by an import.
UPSTREAM_CHECKPOINT_KIND = "upstream"
_SANITIZE_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")


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


def _meta(upstream: UpstreamRun) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "imported_from": str(upstream.folder),
        "upstream_branch": upstream.branch,
        # the config keys upstream set; the others are Rhea's defaults, never upstream's choice
        "upstream_config_keys": sorted(upstream.config),
    }
    if upstream.unmapped:
        meta["upstream_parameters"] = upstream.unmapped
    if upstream.renamed:
        meta["upstream_renamed"] = upstream.renamed
    if upstream.columns:
        meta["upstream_columns"] = upstream.columns
    if upstream.summary is not None:
        meta["upstream_trial_summary"] = upstream.summary
    if upstream.derived:
        meta["derived_metrics"] = upstream.derived
    if upstream.notes:
        meta["import_notes"] = upstream.notes
    return meta


def _final_status(upstream: UpstreamRun) -> tuple[str, dict[str, Any]]:
    """completed, or failed where main's trial_summary.json says the trial failed."""
    summary = upstream.summary or {}
    if summary.get("status") == "failed":
        error = f"{summary.get('error_type', 'Error')}: {summary.get('error', '')}".strip()
        return "failed", {"error": f"The upstream trial failed ({error})."}
    return "completed", {}


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
    meta.update(_meta(upstream))
    write_config(path, config, meta)
    last_epoch = upstream.epochs[-1][0] if upstream.epochs else 0
    status, fields = _final_status(upstream)
    with RunWriter(path) as writer:
        writer.start(
            pid=None,
            host=None,
            device=config["device"],
            slurm_job_id=None,
            total_epochs=int(upstream.config.get("epochs") or last_epoch),
            data=upstream.data,
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
            writer.checkpoint(epoch, target, UPSTREAM_CHECKPOINT_KIND)
        writer.status(status, **fields)


def imported_metadata(run_path: str | Path | None) -> dict[str, Any]:
    """What an import kept beside the config (empty for runs Rhea trained itself)."""
    if run_path is None:
        return {}
    try:
        meta = read_config(Path(run_path)).get("meta", {})
    except RheaError:
        return {}
    if not isinstance(meta, dict) or "imported_from" not in meta:
        return {}
    return meta


def import_summary(
    meta: dict[str, Any], checkpoints: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    """(label, text) lines that `rhea show` prints for an imported run; none for Rhea's own."""
    if not meta:
        return []
    lines = [("from", f"{meta['imported_from']} (upstream {meta.get('upstream_branch', '?')})")]
    for key, value in (meta.get("upstream_parameters") or {}).items():
        lines.append((f"upstream {key}", str(value)))
    for key, target in (meta.get("upstream_renamed") or {}).items():
        lines.append((f"upstream {key}", f"imported as {target}"))
    summary = meta.get("upstream_trial_summary")
    if isinstance(summary, dict):
        figures = ", ".join(
            f"{key} {summary[key]}"
            for key in ("status", "metric", "mode", "best_epoch", "best_metric_value")
            if key in summary
        )
        lines.append(("trial summary", figures))
    set_upstream = meta.get("upstream_config_keys")
    if isinstance(set_upstream, list):
        unset = [key for key in cfgmod.default_config().to_dict() if key not in set_upstream]
        if unset:
            lines.append(("Rhea defaults", f"{', '.join(unset)}: not set upstream"))
    for note in meta.get("import_notes") or []:
        lines.append(("note", str(note)))
    if any(c.get("kind") == UPSTREAM_CHECKPOINT_KIND for c in checkpoints):
        lines.append(
            (
                "model files",
                "upstream TorchScript (torch.jit.save), not Rhea checkpoints: predict with "
                "`rhea predict FILE --nsm1`, copy one with a card with `rhea export RUN`; "
                "a run cannot be resumed from them.",
            )
        )
    return lines


def compared_parameters(row: Any) -> dict[str, Any]:
    """A run's config plus, for an imported run, its verbatim upstream parameters (prefixed
    `upstream `), so that `rhea compare` shows those that differ too. Of an imported run's
    config only the keys upstream set are compared: the others hold Rhea's defaults."""
    meta = imported_metadata(row.path)
    kept = meta.get("upstream_parameters") or {}
    # reprs of functions name their memory address, which differs from run to run
    shown = {
        f"upstream {key}": _ADDRESS_RE.sub("", value) if isinstance(value, str) else value
        for key, value in kept.items()
    }
    set_upstream = meta.get("upstream_config_keys")
    config = row.config
    if isinstance(set_upstream, list):  # an import: Rhea's defaults are no upstream choice
        config = {key: value for key, value in config.items() if key in set_upstream}
    return {**config, **shown}

"""Export of a run imported from upstream: one of its TorchScript model files, with a card.

Upstream saves `model{epoch}_{device}.pt` with torch.jit.save, so the file already is what a
simulation code loads. Exporting it loads it (onto the CPU with --cpu), checks that
predict_all runs, re-saves it with the model card inside and beside it, and checks the copy
against the original. Its layout is the one upstream gave it (rhea_engine.layouts): not-main
files take [N, 4, 2, NF], main files [N, 2, NF, 4]; it cannot be changed without the
training code, so --layout must agree.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from rhea_engine.errors import ExportError
from rhea_engine.export import (
    CARD_ENTRY,
    METHODS,
    ExportResult,
    Progress,
    _check_writable,
    _tmp_or_fail,
    card_json,
    compare_predictions,
    quiet_torchscript,
    random_physical_F4,
    write_card_beside,
)
from rhea_engine.importer import UPSTREAM_CHECKPOINT_KIND, imported_metadata
from rhea_engine.layouts import DESCRIPTION, outputs_in_rhea_units, to_layout

CHECK_CELLS = 256


def upstream_model_files(row: Any) -> list[tuple[int, Path]]:
    """(epoch, file) of the upstream model files an imported run holds, by epoch."""
    files = []
    for item in row.checkpoints or []:
        if item.get("kind") != UPSTREAM_CHECKPOINT_KIND:
            continue
        path = Path(str(item["path"]))
        files.append((int(item.get("epoch") or 0), path if path.is_absolute() else row.path / path))
    return sorted(files, key=lambda pair: pair[0])


def detect_layout(module: Any) -> str:
    """not-main models carry X_from_F4 and F4_from_y; main models only predict_all & co."""
    return "not-main" if hasattr(module, "X_from_F4") else "main"


def _choose(files: list[tuple[int, Path]], best: bool, epoch: int | None, run: str) -> Path:
    if best:
        raise ExportError(
            f"Run '{run}' was imported from upstream, which keeps no best checkpoint. Leave "
            "out --best to export the latest model file, or give --epoch N."
        )
    if epoch is None:
        return files[-1][1]
    for file_epoch, path in files:
        if file_epoch == epoch:
            return path
    known = ", ".join(str(e) for e, _ in files)
    raise ExportError(
        f"Run '{run}' has no upstream model file of epoch {epoch}; epochs with one: {known}."
    )


def _load(path: Path, device: str) -> Any:
    if not path.is_file():
        raise ExportError(f"The upstream model file {path} is gone; import the run again.")
    try:
        with quiet_torchscript():
            return torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # torch.jit.load raises several types for foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"{path} is not a TorchScript model that loads here ({first}). Upstream model "
            "files are written with torch.jit.save; this one may be damaged."
        ) from exc


def _predict(module: Any, F4: torch.Tensor, layout: str, path: Path) -> tuple[torch.Tensor, ...]:
    NF = F4.shape[3]
    try:
        with torch.inference_mode():
            out = module.predict_all(to_layout(F4, layout))
    except Exception as exc:  # the model's own asserts surface as torch.jit.Error
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"The upstream model {path} fails on random physical cells ({first})."
        ) from exc
    return outputs_in_rhea_units(tuple(out), layout, F4.shape[0], NF)


def export_upstream_run(
    row: Any,
    files: list[tuple[int, Path]],
    best: bool,
    epoch: int | None,
    cpu: bool,
    fmt: str,
    output: str | Path | None,
    layout: str | None,
    progress: Progress | None = None,
) -> ExportResult:
    """Re-save an imported upstream model file with a card (see the module docstring)."""
    say = progress or (lambda _msg: None)
    if fmt != "torchscript":
        raise ExportError(
            f"Run '{row.name}' was imported from upstream: its model files are TorchScript and "
            "are exported as such (--format torchscript). An AOTInductor package needs a "
            "model Rhea trained."
        )
    source = _choose(files, best, epoch, row.name)
    device = "cpu" if cpu or not torch.cuda.is_available() else "cuda"
    start = time.perf_counter()
    say(f"Loading {source.name}")
    module = _load(source, device)
    file_layout = detect_layout(module)
    if layout is not None and layout != file_layout:
        raise ExportError(
            f"{source.name} is an upstream {file_layout} model: its predict_all takes "
            f"{DESCRIPTION[file_layout]['input']}. Its layout cannot be changed without the "
            f"training code; export it with --layout {file_layout}, or train the run in Rhea."
        )
    NF = int(getattr(module, "NF", 3))
    F4 = random_physical_F4(CHECK_CELLS, NF, seed=12345).to(device)
    original = _predict(module, F4, file_layout, source)
    file_epoch = next(e for e, p in files if p == source)
    if output is None:
        output = row.path / "exports" / f"{row.name}_epoch{file_epoch:05d}_{device}_upstream.pt"
    target = Path(output).expanduser().resolve()
    _check_writable(target)
    meta = imported_metadata(row.path)
    card = {
        "run": {"name": row.name, "id": row.id, "sweep": row.sweep, "path": str(row.path)},
        "origin": {
            "kind": "upstream TorchScript model, re-saved unchanged (code and weights)",
            "file": str(source),
            "upstream_branch": meta.get("upstream_branch", "unknown"),
            "imported_from": meta.get("imported_from"),
        },
        "checkpoint": {"path": str(source), "epoch": file_epoch, "kind": "upstream"},
        "config": row.config,
        "upstream_parameters": meta.get("upstream_parameters", {}),
        "data": row.data,
        "format": "torchscript",
        "device": device,
        "layout": file_layout,
        "input": {"name": "F4_initial", "layout": DESCRIPTION[file_layout]["input"]},
        "outputs": {
            "F4_final": DESCRIPTION[file_layout]["F4_final"],
            "growthrate": DESCRIPTION[file_layout]["growthrate"],
            "stability": "[N] probability that the cell is stable",
        },
        "methods": [name for name in (*METHODS, "forward") if hasattr(module, name)],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = _tmp_or_fail(target)
    try:
        say("Saving the copy with its card")
        with quiet_torchscript():
            torch.jit.save(module, str(tmp), _extra_files={CARD_ENTRY: card_json(card)})
        copy = _predict(_load(tmp, device), F4, file_layout, tmp)
        diffs = compare_predictions(F4, original, copy)
        if max(diffs["max_F4_final_over_ntot"], diffs["max_abs_stability"]) > 0:
            raise ExportError(f"The copy of {source} does not reproduce it; nothing was kept.")
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"Cannot write the model to {target}: {exc.strerror or exc}.") from None
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    card_path = write_card_beside(target, card, diffs)
    return ExportResult(
        path=target,
        card_path=card_path,
        format="torchscript",
        device=device,
        epoch=file_epoch,
        parity=diffs,
        seconds=time.perf_counter() - start,
        layout=file_layout,
        sha256=card["file"]["sha256"],
    )

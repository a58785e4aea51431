"""Export a trained model as TorchScript or an AOTInductor package, with a parity check and a card.

TorchScript keeps the upstream methods (`predict_all`, `predict_stability`,
`predict_WhiskyTHC`, `X_from_F4`, `F4_from_y`, `convert_y_to_2flavor`) so existing C++ and
Python consumers load it unchanged. An AOTInductor package holds `predict_all` only,
compiled ahead of time for the machine that exports it. Every export is loaded back from
disk and compared with the eager model on random physical inputs; a JSON model card is
written beside the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rhea_engine import __version__
from rhea_engine.errors import ExportError, RheaError
from rhea_engine.layouts import (
    DEFAULT_LAYOUT,
    DESCRIPTION,
    MainLayout,
    check_layout,
    outputs_in_rhea_units,
    to_layout,
)
from rhea_engine.physics.units import NDENS_TO_INVSEC
from rhea_engine.strict_json import json_safe
from rhea_engine.vocabulary import MISSING

FORMATS = ("torchscript", "aoti")
SUFFIX = {"torchscript": ".pt", "aoti": ".pt2"}
#: Methods every exported TorchScript model carries (upstream names and signatures).
METHODS = (
    "predict_all",
    "predict_stability",
    "predict_WhiskyTHC",
    "X_from_F4",
    "F4_from_y",
    "convert_y_to_2flavor",
)
#: Name of the model card stored inside TorchScript files (and AOTI metadata key).
CARD_ENTRY = "rhea_model_card.json"
#: Largest exported-vs-eager difference accepted (of ntot for F4; relative for growth rate).
PARITY_TOLERANCE = 1e-4
PARITY_CELLS = 4096

Progress = Callable[[str], None]


@dataclass
class ExportResult:
    """What an export wrote and how closely the exported model matches the eager one."""

    path: Path
    card_path: Path
    format: str
    device: str
    epoch: int
    parity: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    layout: str = DEFAULT_LAYOUT
    sha256: str = ""


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence only TorchScript's own deprecation notices (and export's pytree notice)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning
        )
        warnings.filterwarnings(
            "ignore",
            message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
            category=FutureWarning,
        )
        yield


@contextlib.contextmanager
def private_tmpdir() -> Iterator[None]:
    """Point TMPDIR at a private folder, removed afterwards with whatever was put there.

    Loading an AOTInductor package extracts it into a fresh folder under the temporary
    directory (std::filesystem::temp_directory_path, which reads TMPDIR) and never removes
    it. Once loaded, the shared library and its weights are mapped into memory, so the
    extracted files can go.
    """
    import tempfile

    folder = tempfile.mkdtemp(prefix="rhea-aoti-")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


def random_physical_F4(
    n: int, NF: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Random physical four-fluxes [n, 4, 2, NF]: ntot log-uniform in [1e30, 1e35] cm^-3,
    random species fractions, flux factors uniform in [0, 0.95), isotropic directions."""
    gen = torch.Generator().manual_seed(seed)
    log_ntot = 30 + 5 * torch.rand(n, generator=gen, dtype=torch.float64)
    fractions = -torch.log(torch.rand(n, 2, NF, generator=gen, dtype=torch.float64))
    fractions = fractions / fractions.sum(dim=(1, 2), keepdim=True)
    N = fractions * (10**log_ntot)[:, None, None]
    direction = torch.randn(n, 3, 2, NF, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=1, keepdim=True)
    flux_factor = 0.95 * torch.rand(n, 1, 2, NF, generator=gen, dtype=torch.float64)
    F4 = torch.cat([direction * flux_factor * N[:, None], N[:, None]], dim=1)
    return F4.to(dtype)


def compare_predictions(
    F4_initial: torch.Tensor, reference: tuple[torch.Tensor, ...], other: tuple[torch.Tensor, ...]
) -> dict[str, float]:
    """Largest differences of predict_all outputs: F4 of ntot, growth rate relative, stability."""
    ntot = F4_initial[:, 3].double().sum(dim=(1, 2)).cpu()
    F4_ref, growth_ref, stab_ref = (t.detach().double().cpu() for t in reference)
    F4_new, growth_new, stab_new = (t.detach().double().cpu() for t in other)
    dF4 = (F4_new - F4_ref).abs()
    return {
        "cells": float(F4_initial.shape[0]),
        "max_abs_F4_final": float(dF4.max()),
        "max_F4_final_over_ntot": float((dF4.amax(dim=(1, 2, 3)) / ntot).max()),
        "max_abs_growthrate": float((growth_new - growth_ref).abs().max()),
        "max_rel_growthrate": float(
            ((growth_new - growth_ref).abs() / growth_ref.abs().clamp_min(1e-300)).max()
        ),
        "max_abs_stability": float((stab_new - stab_ref).abs().max()),
    }


def _check_parity(diffs: dict[str, float], path: Path) -> None:
    worst = max(
        diffs["max_F4_final_over_ntot"], diffs["max_rel_growthrate"], diffs["max_abs_stability"]
    )
    if not math.isfinite(worst) or worst > PARITY_TOLERANCE:
        raise ExportError(
            f"The exported model {path} disagrees with the trained model by {worst:.3e} "
            f"(allowed {PARITY_TOLERANCE:g}: F4 of ntot, growth rate relative, stability), so "
            "it was not kept. This points at a torch bug on this machine; try the other "
            "--format, or --cpu."
        )


def script_model(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """TorchScript of the model, without TorchScript's deprecation noise."""
    try:
        with quiet_torchscript():
            return torch.jit.script(model)
    except Exception as exc:  # torch raises many types for unscriptable code
        raise ExportError(f"The model could not be converted to TorchScript: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise ExportError(
            f"Cannot write the model to {path}: it is a directory. Give a file "
            f"name such as {path / 'model.pt'}."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"Cannot create the folder {path.parent} for the export: {exc.strerror or exc}."
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise ExportError(
            f"Cannot write the model to {path}: the folder {path.parent} is not "
            "writable. Choose another place with -o PATH."
        )


def _tmp_beside(path: Path) -> Path:
    """The same file name in a hidden folder beside `path`, renamed into place when complete.

    Keeping the name keeps the archive's inner folder (named after the file) and the suffix
    (AOTInductor insists on .pt2)."""
    folder = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    folder.mkdir(exist_ok=True)
    return folder / path.name


def _tmp_or_fail(path: Path) -> Path:
    try:
        return _tmp_beside(path)
    except OSError as exc:
        raise ExportError(f"Cannot write to the folder of {path}: {exc.strerror or exc}.") from None


class _PredictAll(torch.nn.Module):
    """forward(F4) = predict_all(F4), the one entry point of an AOTInductor package."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, F4_initial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.predict_all(F4_initial)  # type: ignore[no-any-return,operator]


def export_model(
    model: torch.nn.Module,
    path: str | Path,
    card: dict[str, Any],
    fmt: str = "torchscript",
    device: str = "cpu",
    parity_cells: int = PARITY_CELLS,
    progress: Progress | None = None,
    layout: str = DEFAULT_LAYOUT,
) -> ExportResult:
    """Export an eager FFI model to `path`, check it against the eager model, write its card.

    `layout` main gives predict_all upstream main's layout (rhea_engine.layouts); the parity
    check converts its outputs back and compares them with the eager model's.
    """
    say = progress or (lambda _msg: None)
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    check_layout(layout)
    target = Path(path).expanduser().resolve()
    _check_writable(target)
    start = time.perf_counter()
    model = model.to(device).eval()
    NF = int(getattr(model, "NF", 3))
    dtype = next(model.parameters()).dtype
    F4_check = random_physical_F4(parity_cells, NF, seed=12345, dtype=dtype).to(device)
    with torch.inference_mode():
        eager = model.predict_all(F4_check)  # type: ignore[operator]
    module = MainLayout(model).eval() if layout == "main" else model
    F4_input = to_layout(F4_check, layout)
    full_card = {**card, **_card_common(fmt, device, dtype, NF, layout)}
    tmp = _tmp_or_fail(target)
    try:
        if fmt == "torchscript":
            say("Converting to TorchScript")
            scripted = script_model(module)
            with quiet_torchscript():
                torch.jit.save(scripted, str(tmp), _extra_files={CARD_ENTRY: card_json(full_card)})
                loaded = torch.jit.load(str(tmp), map_location=device)
            with torch.inference_mode():
                exported = loaded.predict_all(F4_input)
        else:
            say("Compiling an AOTInductor package (C++ compilation, this takes a while)")
            package_aoti(module, tmp, F4_input[: min(parity_cells, 1024)], full_card)
            with quiet_torchscript(), private_tmpdir():
                runner = torch._inductor.aoti_load_package(str(tmp))
            with torch.inference_mode():
                exported = tuple(runner(F4_input))
        say("Checking the export against the trained model")
        exported = outputs_in_rhea_units(exported, layout, F4_check.shape[0], NF)
        diffs = compare_predictions(F4_check, eager, exported)
        _check_parity(diffs, target)
        os.replace(tmp, target)
    except RheaError:
        raise
    except OSError as exc:
        raise ExportError(f"Cannot write the model to {target}: {exc.strerror or exc}.") from None
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    card_path = write_card_beside(target, full_card, diffs)
    return ExportResult(
        path=target,
        card_path=card_path,
        format=fmt,
        device=device,
        epoch=int(card.get("checkpoint", {}).get("epoch", -1)),
        parity=diffs,
        seconds=time.perf_counter() - start,
        layout=layout,
        sha256=full_card["file"]["sha256"],
    )


def write_card_beside(target: Path, full_card: dict[str, Any], diffs: dict[str, float]) -> Path:
    """Complete the card with the file's hash and the parity figures; write it beside `target`."""
    full_card["file"] = {
        "name": target.name,
        "sha256": _sha256(target),
        "bytes": target.stat().st_size,
    }
    full_card["parity"] = diffs
    card_path = card_path_for(target)
    tmp_card = _tmp_or_fail(card_path)
    try:
        tmp_card.write_text(card_json(full_card, indent=2) + "\n")
        os.replace(tmp_card, card_path)
    except OSError as exc:
        raise ExportError(
            f"The model was written to {target}, but its card {card_path} could not be: "
            f"{exc.strerror or exc}."
        ) from None
    finally:
        shutil.rmtree(tmp_card.parent, ignore_errors=True)
    return card_path


def package_aoti(
    model: torch.nn.Module, path: Path, example_F4: torch.Tensor, card: dict[str, Any]
) -> None:
    """Compile predict_all into an AOTInductor package with a dynamic batch dimension."""
    wrapper = _PredictAll(model).eval()
    batch = torch.export.Dim("batch", min=1, max=2**31 - 1)
    try:
        with quiet_torchscript(), torch.no_grad():
            program = torch.export.export(wrapper, (example_F4,), dynamic_shapes=({0: batch},))
            torch._inductor.aoti_compile_and_package(
                program,
                package_path=str(path),
                inductor_configs={
                    "aot_inductor.metadata": {
                        "rhea_model": "predict_all",
                        "rhea_device": str(card["device"]),
                        "rhea_layout": str(card.get("layout", DEFAULT_LAYOUT)),
                    }
                },
            )
    except RheaError:
        raise
    except Exception as exc:  # compiler, export and toolchain failures come in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"Building the AOTInductor package failed: {first}. It needs a working C++ compiler "
            "(g++) on this machine; --format torchscript needs none."
        ) from exc


def card_json(card: dict[str, Any], indent: int | None = None) -> str:
    return json.dumps(json_safe(card), indent=indent, default=str, allow_nan=False)


def card_path_for(model_path: Path) -> Path:
    """The model card beside an exported file, named after the whole file name (so the cards
    of model.pt and model.pt2 differ): model.pt -> model.pt.card.json."""
    return model_path.with_name(model_path.name + ".card.json")


#: Methods of a main-layout TorchScript export (all in upstream main's layout).
MAIN_LAYOUT_METHODS = ("predict_all", "predict_stability", "convert_y_to_2flavor")


def _card_common(
    fmt: str, device: str, dtype: torch.dtype, NF: int, layout: str = DEFAULT_LAYOUT
) -> dict[str, Any]:
    if fmt != "torchscript":
        methods = ["predict_all (as forward)"]
    else:
        methods = list(METHODS if layout == DEFAULT_LAYOUT else MAIN_LAYOUT_METHODS)
    described = DESCRIPTION[layout]
    shape = f"[N, 4, 2, {NF}]" if layout == DEFAULT_LAYOUT else f"[N, 2, {NF}, 4]"
    return {
        "format": fmt,
        "device": device,
        "layout": layout,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input": {
            "name": "F4_initial",
            "shape": shape,
            "dtype": str(dtype),
            "units": "cm^-3",
            "layout": described["input"],
        },
        "outputs": {
            "F4_final": described["F4_final"].replace("NF", str(NF)),
            "growthrate": described["growthrate"],
            "stability": "[N] probability that the cell is stable",
        },
        "methods": methods,
        "growth_rate_constant": {
            "name": "NDENS_TO_INVSEC",
            "value": NDENS_TO_INVSEC,
            "unit": "cm^3/s",
            "formula": "sqrt(2) G_F (hbar c)^3 / hbar",
        },
        "versions": {
            "rhea": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cuda": torch.version.cuda,
        },
        "machine": {
            "system": platform.system(),
            "machine": platform.machine(),
            "compiler": shutil.which("g++") or shutil.which("c++"),
        }
        if fmt == "aoti"
        else None,
    }


# ---- runs and checkpoints --------------------------------------------------------------


def resolve_checkpoint(run_path: Path, best: bool = False, epoch: int | None = None) -> Path:
    """The checkpoint of a run to export: --best, --epoch N, or else the latest one."""
    from rhea_engine.checkpoint import (
        CHECKPOINT_DIR,
        epoch_path,
        latest_checkpoint,
        load_checkpoint,
    )

    if best and epoch is not None:
        raise ExportError("Give either --best or --epoch N, not both.")
    directory = run_path / CHECKPOINT_DIR
    epochs = (
        sorted(
            int(p.stem.split("_")[1])
            for p in directory.glob("epoch_*.pt")
            if p.stem.split("_")[1].isdigit()
        )
        if directory.is_dir()
        else []
    )
    if epoch is not None:
        candidate = epoch_path(directory, epoch)
        if candidate.is_file():
            return candidate
        for name in ("last.pt", "best.pt"):  # a final epoch may live only in last.pt
            other = directory / name
            if other.is_file() and int(load_checkpoint(other).get("epoch", -1)) == epoch:
                return other
        known = ", ".join(str(e) for e in epochs) or "none"
        raise ExportError(
            f"Run '{run_path.name}' has no checkpoint of epoch {epoch}. Epochs with "
            f"a checkpoint: {known}. Use --best, or leave out --epoch for the latest."
        )
    if best:
        candidate = directory / "best.pt"
        if not candidate.is_file():
            raise ExportError(
                f"Run '{run_path.name}' has no best checkpoint yet (it is written "
                "after the first epoch with a test loss). Leave out --best to take "
                "the latest checkpoint."
            )
        return candidate
    latest = latest_checkpoint(run_path)
    if latest is None:
        raise ExportError(
            f"Run '{run_path.name}' has no checkpoint to export yet. Checkpoints are "
            f"written to {directory} every `output_every` epochs and at the end; "
            "wait for one, or `rhea resume` the run."
        )
    return latest


def _export_device(cpu: bool, config_device: str) -> str:
    """CPU with --cpu or without CUDA; else the run's GPU if this machine has it, else cuda:0."""
    if cpu or config_device == "cpu" or not torch.cuda.is_available():
        return "cpu"
    index = config_device.partition(":")[2]
    if index.isdigit() and int(index) < torch.cuda.device_count():
        return config_device
    return "cuda"


def export_run(
    home: str | Path,
    handle: str,
    best: bool = False,
    epoch: int | None = None,
    cpu: bool = False,
    fmt: str = "torchscript",
    output: str | Path | None = None,
    progress: Progress | None = None,
    layout: str | None = None,
) -> ExportResult:
    """Export a checkpoint of run `handle` (latest, --best or --epoch N) from the Rhea home.

    `layout`: not-main (the default) or main (rhea_engine.layouts). A run imported from
    upstream with its TorchScript model files exports one of those files, re-saved with a card.
    An AOTInductor package's sha256 is recorded in the home (rhea_engine.native_trust).
    """
    from rhea_engine.checkpoint import load_checkpoint
    from rhea_engine.export_upstream import export_upstream_run, upstream_model_files
    from rhea_engine.model import model_from_checkpoint
    from rhea_engine.native_trust import record_export
    from rhea_engine.runs.refresh import refresh
    from rhea_engine.runs.store import Store

    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    if layout is not None:
        check_layout(layout)
    with contextlib.closing(Store.open_existing(home)) as store:
        store.get_run(handle)  # an unknown handle stops here, naming the known runs
        refresh(store, [handle])
        row = store.get_run(handle)
    if row.status == MISSING or row.path is None:
        raise ExportError(f"Nothing to export from run '{row.name}': {row.error}")
    upstream_files = upstream_model_files(row)
    if upstream_files:
        return export_upstream_run(
            row, upstream_files, best, epoch, cpu, fmt, output, layout, progress
        )
    ckpt_path = resolve_checkpoint(row.path, best, epoch)
    ckpt = load_checkpoint(ckpt_path)
    try:
        model = model_from_checkpoint(ckpt)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ExportError(
            f"The checkpoint {ckpt_path} does not fit the model its config "
            f"describes ({str(exc).splitlines()[0]})."
        ) from exc
    config = dict(ckpt.get("config", {}))
    device = _export_device(cpu, str(config.get("device", "auto")))
    ckpt_epoch = int(ckpt.get("epoch", -1))
    layout = layout or DEFAULT_LAYOUT
    if output is None:
        kind = "cpu" if device == "cpu" else "cuda"
        tag = "" if layout == DEFAULT_LAYOUT else "_main"
        name = f"{row.name}_epoch{ckpt_epoch:05d}_{kind}{tag}{SUFFIX[fmt]}"
        output = row.path / "exports" / name
    output = Path(output).expanduser()
    if fmt == "aoti" and output.suffix != ".pt2":
        raise ExportError(f"An AOTInductor package must be named *.pt2; got '{output.name}'.")
    card = {
        "run": {
            "name": row.name,
            "id": row.id,
            "sweep": row.sweep,
            "status": row.status,
            "path": str(row.path),
            "git_commit": row.git_commit,
            "git_dirty": row.git_dirty,
        },
        "checkpoint": {
            "path": str(ckpt_path),
            "epoch": ckpt_epoch,
            "kind": ckpt.get("kind"),
            "best_test_loss": ckpt.get("best_test_loss"),
        },
        "config": config,
        "data": row.data,
        "metrics": {
            "last_epoch": row.last_epoch,
            "last_train_loss": row.last_train_loss,
            "last_test_loss": row.last_test_loss,
            "best_train_loss": row.best_train_loss,
            "best_test_loss": row.best_test_loss,
            "max_eln_violation": row.max_eln_violation,
            "evaluation": row.evaluation,
        },
    }
    result = export_model(
        model, output, card, fmt=fmt, device=device, progress=progress, layout=layout
    )
    if fmt == "aoti":
        record_export(home, result.sha256, result.path)
    return result

"""Predictions with an exported model: the NSM1 test cell, or every cell of an HDF5 file."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rhea_engine.errors import DataError, ExportError
from rhea_engine.export import CARD_ENTRY, METHODS, quiet_torchscript

F4_INITIAL = "F4_initial(1|ccm)"
PREDICT_CHUNK = 65536

#: The NSM1 cell (Richers et al. 2024, arXiv:2409.04405; PHYSICS.md §9): number densities in
#: cm^-3 per (nu/nubar, flavor) and flux/N ratios of nu_e, nubar_e and each heavy species.
NSM1_N = ((14.22e32, 19.65e32 / 4, 19.65e32 / 4), (19.15e32, 19.65e32 / 4, 19.65e32 / 4))
NSM1_FLUX_OVER_N = {
    "nu_e": (0.0974, 0.0421, -0.1343),
    "nubar_e": (0.0723, 0.0313, -0.3446),
    "heavy": (-0.0216, 0.0743, -0.5354),
}
#: Final number densities of the full simulation (Emu) of the NSM1 cell, [nu, nubar][e, mu, tau].
NSM1_EMU_N = ((9.9546e32, 7.8547e32, 6.2329e32), (1.4881e33, 7.8547e32, 6.2329e32))
SPECIES = (("nu_e", "nu_mu", "nu_tau"), ("nubar_e", "nubar_mu", "nubar_tau"))


def nsm1_F4() -> np.ndarray:
    """The NSM1 initial four-flux, shape [1, 4, 2, 3], float64, cm^-3."""
    F4 = np.zeros((1, 4, 2, 3))
    for s in range(2):
        for a in range(3):
            ratio = NSM1_FLUX_OVER_N["heavy" if a else ("nu_e", "nubar_e")[s]]
            F4[0, :3, s, a] = np.asarray(ratio) * NSM1_N[s][a]
            F4[0, 3, s, a] = NSM1_N[s][a]
    return F4


@dataclass
class ExportedModel:
    """An exported model loaded for prediction: TorchScript (.pt) or AOTInductor (.pt2)."""

    path: Path
    format: str
    predict: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    NF: int = 3
    dtype: torch.dtype = torch.float32
    card: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def predict_all(self, F4_initial: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(F4_final, growth rate in 1/s, stability) as float64 arrays."""
        with torch.inference_mode():
            out = self.predict(torch.as_tensor(F4_initial).to(self.device, self.dtype))
        if len(out) != 3:
            raise ExportError(
                f"{self.path} returned {len(out)} outputs from predict_all; a Rhea "
                "model returns three (F4_final, growth rate, stability)."
            )
        F4_final, growth, stability = (t.detach().double().cpu().numpy() for t in out)
        return F4_final, growth, stability


def _not_rhea(path: Path, why: str) -> ExportError:
    return ExportError(
        f"{path} is not a Rhea model ({why}). `rhea predict` takes a file written by "
        "`rhea export RUN` (TorchScript .pt, or an AOTInductor .pt2 package); a training "
        "checkpoint must be exported first."
    )


def load_exported(path: str | Path) -> ExportedModel:
    """Load an exported model, checking that it is a Rhea FFI model."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ExportError(f"The model file {file} does not exist.")
    if not zipfile.is_zipfile(file):
        raise _not_rhea(file, "not a TorchScript or AOTInductor archive")
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
    is_aoti = any("/data/aotinductor/" in name for name in names)
    if file.suffix == ".pt2" or is_aoti:
        return _load_aoti(file, is_aoti)
    if not any("/code/" in name for name in names):
        saved = any(name.endswith("/data.pkl") for name in names)
        raise _not_rhea(
            file,
            "it holds tensors saved with torch.save, such as a training "
            "checkpoint, not an exported model"
            if saved
            else "not a TorchScript archive",
        )
    extra = {CARD_ENTRY: ""}
    try:
        with quiet_torchscript():
            module = torch.jit.load(str(file), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch.jit.load raises RuntimeError and friends
        raise _not_rhea(file, f"not a TorchScript module: {_first_line(exc)}") from exc
    missing = [m for m in METHODS if not hasattr(module, m)]
    if missing:
        raise _not_rhea(file, f"it lacks the method(s) {', '.join(missing)}")
    card = json.loads(extra[CARD_ENTRY]) if extra[CARD_ENTRY] else _card_beside(file)
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = module.to(device)
    return ExportedModel(
        path=file,
        format="torchscript",
        predict=module.predict_all,
        NF=_card_NF(card),
        dtype=dtype,
        card=card,
        device=device,
    )


def _load_aoti(file: Path, is_aoti: bool) -> ExportedModel:
    """An AOTInductor package written by `rhea export --format aoti`."""
    if not is_aoti:
        raise _not_rhea(file, "not an AOTInductor package")
    try:
        with quiet_torchscript():
            runner = torch._inductor.aoti_load_package(str(file))
    except Exception as exc:  # the loader raises many types for foreign files
        raise _not_rhea(file, f"the AOTInductor package does not load: {_first_line(exc)}") from exc
    metadata = runner.get_metadata() if hasattr(runner, "get_metadata") else {}
    if metadata.get("rhea_model") != "predict_all":
        raise _not_rhea(file, "the package has no Rhea metadata")
    card = _card_beside(file)
    device = str(metadata.get("rhea_device", card.get("device", "cpu")))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ExportError(
            f"{file} was compiled for CUDA ({device}) and this machine has no "
            "usable GPU. Export with --format torchscript (or on a CPU machine "
            "with --cpu) to predict here."
        )
    return ExportedModel(
        path=file,
        format="aoti",
        predict=lambda F4: tuple(runner(F4)),
        NF=_card_NF(card),
        card=card,
        device=device,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _card_beside(file: Path) -> dict[str, Any]:
    card = file.with_name(file.stem + ".card.json")
    try:
        return dict(json.loads(card.read_text())) if card.is_file() else {}
    except (OSError, ValueError):
        return {}


def _card_NF(card: dict[str, Any]) -> int:
    try:
        return int(card.get("config", {}).get("NF", 3))
    except (TypeError, ValueError):
        return 3


@dataclass
class NSM1Prediction:
    """Model, Box3D and full-simulation (Emu) results for the NSM1 cell."""

    F4_initial: np.ndarray
    F4_final: np.ndarray
    growthrate: float
    stability: float
    box3d_N: np.ndarray | None
    box3d_growthrate: float | None
    emu_N: np.ndarray = field(default_factory=lambda: np.asarray(NSM1_EMU_N))


def predict_nsm1(model: ExportedModel) -> NSM1Prediction:
    """Run the NSM1 cell through the model, with Box3D (order 17) beside it."""
    if model.NF != 3:
        raise ExportError(
            f"The NSM1 cell has three flavors but {model.path} was trained with NF = {model.NF}."
        )
    F4 = nsm1_F4()
    F4_final, growth, stability = model.predict_all(F4)
    from rhea_engine.physics.box import box3d

    box = box3d(F4)
    return NSM1Prediction(
        F4_initial=F4,
        F4_final=F4_final,
        growthrate=float(growth[0]),
        stability=float(stability[0]),
        box3d_N=box.F4_final[0, 3],
        box3d_growthrate=float(box.growth_rate[0]),
    )


def read_F4_initial(path: str | Path, NF: int) -> np.ndarray:
    """F4_initial [N, 4, 2, NF] of an HDF5 file, with clear errors for anything else."""
    import h5py

    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"The input file {file} does not exist.")
    try:
        with h5py.File(file, "r") as h5:
            if F4_INITIAL not in h5:
                raise DataError(
                    f"The input file {file} has no dataset '{F4_INITIAL}' (it has: "
                    f"{', '.join(sorted(h5.keys())) or 'nothing'})."
                )
            F4 = np.asarray(h5[F4_INITIAL][...], dtype=np.float64)
    except OSError as exc:
        raise DataError(f"The input file {file} is not a readable HDF5 file ({exc}).") from None
    if F4.ndim != 4 or F4.shape[1:] != (4, 2, NF):
        raise DataError(
            f"'{F4_INITIAL}' in {file} must have shape [N, 4, 2, {NF}] (F_x, F_y, "
            f"F_z, N; nu/nubar; flavor) for this model, but it has {list(F4.shape)}."
        )
    if F4.shape[0] == 0:
        raise DataError(f"'{F4_INITIAL}' in {file} has no rows.")
    return F4


def predict_file(
    model: ExportedModel,
    input_path: str | Path,
    output_path: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, int, int]:
    """Predict every cell of an HDF5 file; writes F4_final, growthRate, stability and stable.

    Rows with a non-finite value get NaN predictions. Returns (output path, rows, NaN rows).
    """
    import h5py

    source, target = Path(input_path).expanduser(), Path(output_path).expanduser()
    if target.resolve() == source.resolve():
        raise DataError(f"The output file must differ from the input file {source}.")
    if target.is_dir():
        raise DataError(f"Cannot write {target}: it is a directory. Give a file name with -o.")
    F4 = read_F4_initial(source, model.NF)
    n = F4.shape[0]
    finite = np.isfinite(F4).all(axis=(1, 2, 3)) & (F4[:, 3].sum(axis=(1, 2)) > 0)
    F4_final = np.full_like(F4, np.nan)
    growth = np.full(n, np.nan)
    stability = np.full(n, np.nan)
    rows = np.flatnonzero(finite)
    for start in range(0, rows.size, PREDICT_CHUNK):
        chunk = rows[start : start + PREDICT_CHUNK]
        F4_final[chunk], growth[chunk], stability[chunk] = model.predict_all(F4[chunk])
        if progress:
            progress(min(start + PREDICT_CHUNK, rows.size), rows.size)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(tmp, "w") as h5:
                h5.create_dataset(F4_INITIAL, data=F4)
                h5.create_dataset("F4_final(1|ccm)", data=F4_final)
                h5.create_dataset("growthRate(1|s)", data=growth)
                h5.create_dataset("stability", data=stability)
                h5.create_dataset(
                    "stable",
                    data=np.where(
                        np.isnan(stability), np.nan, (stability > 0.5).astype(np.float64)
                    ),
                )
                h5.create_dataset("nf", data=np.int64(model.NF))
                h5.attrs["model"] = str(model.path)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:
        raise DataError(
            f"Cannot write the predictions to {target}: {exc.strerror or exc}."
        ) from None
    return target, n, int(n - rows.size)

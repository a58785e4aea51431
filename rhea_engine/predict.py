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
from rhea_engine.export import CARD_ENTRY, METHODS, private_tmpdir, quiet_torchscript
from rhea_engine.layouts import (
    DEFAULT_LAYOUT,
    DESCRIPTION,
    LAYOUTS,
    outputs_in_rhea_units,
    to_layout,
)


class ModelFileError(ExportError):
    """A model file that cannot be used for predictions (missing, foreign, damaged, untrusted)."""

    title = "Model file error"


F4_INITIAL = "F4_initial(1|ccm)"
PREDICT_CHUNK = 65536

#: The NSM1 cell (Richers et al. 2024, arXiv:2409.04405; docs/physics.md §9): number densities in
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
    """An exported model loaded for prediction: TorchScript (.pt) or AOTInductor (.pt2).

    `layout` is the layout its predict_all takes (rhea_engine.layouts); `origin` is "rhea" for
    a file with a Rhea model card and "upstream" for an upstream TorchScript file.
    """

    path: Path
    format: str
    predict: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    NF: int = 3
    dtype: torch.dtype = torch.float32
    card: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    layout: str = DEFAULT_LAYOUT
    origin: str = "rhea"

    def predict_all(self, F4_initial: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(F4_final [N,4,2,NF], growth rate in 1/s, stability) as float64 arrays, whatever the
        model's layout; single-cell outputs squeezed to 0-d (upstream not-main) are reshaped."""
        n = int(F4_initial.shape[0])
        F4 = to_layout(torch.as_tensor(F4_initial), self.layout).to(self.device, self.dtype)
        try:
            with torch.inference_mode():
                out = self.predict(F4.contiguous())
        except Exception as exc:  # a model's own checks surface as torch.jit.Error and friends
            lines = str(exc).strip().splitlines()
            hint = (
                " Upstream main's models stop on cells with a flux below float32 resolution; "
                "`rhea data inspect FILE` counts them."
                if self.origin == "upstream" and self.layout == "main"
                else ""
            )
            raise ModelFileError(
                f"{self.path} failed on these inputs "
                f"({lines[-1] if lines else type(exc).__name__}).{hint}"
            ) from exc
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise ModelFileError(
                f"{self.path} returned {len(out) if isinstance(out, (tuple, list)) else 1} "
                "output(s) from predict_all; an FFI model returns three (F4_final, growth rate, "
                "stability)."
            )
        try:
            F4_final, growth, stability = outputs_in_rhea_units(tuple(out), self.layout, n, self.NF)
        except RuntimeError as exc:
            raise ModelFileError(
                f"{self.path} returned outputs of unexpected shapes for {n} cells in the "
                f"{self.layout} layout ({_first_line(exc)})."
            ) from None
        return F4_final.numpy(), growth.numpy(), stability.numpy()

    def describe(self) -> str:
        """One line: what the file is and what its predict_all takes."""
        what = "Rhea export" if self.origin == "rhea" else "upstream TorchScript model"
        return (
            f"{self.path.name}: {what} ({self.format}, {self.layout} layout: "
            f"{DESCRIPTION[self.layout]['input']}; growth rate {DESCRIPTION[self.layout]['growthrate']})"
        )


def _not_rhea(path: Path, why: str) -> ModelFileError:
    return ModelFileError(
        f"{path} is not an FFI model Rhea can use ({why}). `rhea predict` takes a file written "
        "by `rhea export RUN` (TorchScript .pt, or an AOTInductor .pt2 package) or an upstream "
        "TorchScript model (model<epoch>_<device>.pt); a training checkpoint must be exported "
        "first."
    )


def _check_model_file(file: Path) -> None:
    if not file.exists():
        raise ModelFileError(f"The model file {file} does not exist.")
    if file.is_dir():
        raise ModelFileError(
            f"{file} is a directory, not a model file. Name the exported file inside it (a .pt "
            "or .pt2 written by `rhea export`)."
        )


def load_exported(
    path: str | Path, home: str | Path | None = None, trust_native_code: bool = False
) -> ExportedModel:
    """Load an exported (or upstream TorchScript) model, checking that it is an FFI model.

    An AOTInductor package is opened only if `home` exported it or `trust_native_code`
    (rhea_engine.native_trust): opening one loads the shared library inside it.
    """
    file = Path(path).expanduser()
    _check_model_file(file)
    if not zipfile.is_zipfile(file):
        raise _not_rhea(file, "not a TorchScript or AOTInductor archive")
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
    is_aoti = any("/data/aotinductor/" in name for name in names)
    if file.suffix == ".pt2" or is_aoti:
        return _load_aoti(file, is_aoti, home, trust_native_code)
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
    if extra[CARD_ENTRY]:
        card = parse_card(extra[CARD_ENTRY], f"The model card inside {file}")
    else:
        card = _card_beside(file)
    layout, origin = _layout_of(module, card, file)
    required = METHODS if layout == DEFAULT_LAYOUT and origin == "rhea" else ("predict_all",)
    missing = [m for m in required if not hasattr(module, m)]
    if missing:
        raise _not_rhea(file, f"it lacks the method(s) {', '.join(missing)}")
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = module.to(device)
    NF = _card_NF(card) if card else int(getattr(module, "NF", 3))
    return ExportedModel(
        path=file,
        format="torchscript",
        predict=module.predict_all,
        NF=NF,
        dtype=dtype,
        card=card,
        device=device,
        layout=layout,
        origin=origin,
    )


def _layout_of(module: Any, card: dict[str, Any], file: Path) -> tuple[str, str]:
    """(layout, origin): from the card, else from the methods an upstream file has."""
    if card:
        layout = str(card.get("layout", DEFAULT_LAYOUT))
        if layout not in LAYOUTS:
            raise ModelFileError(
                f"The model card of {file} names the layout '{layout}'; Rhea knows "
                f"{', '.join(LAYOUTS)}."
            )
        origin = "upstream" if isinstance(card.get("origin"), dict) else "rhea"
        return layout, origin
    if not hasattr(module, "predict_all"):
        raise _not_rhea(file, "it lacks the method predict_all")
    return ("not-main" if hasattr(module, "X_from_F4") else "main"), "upstream"


def _load_aoti(
    file: Path, is_aoti: bool, home: str | Path | None, trust_native_code: bool
) -> ExportedModel:
    """An AOTInductor package written by `rhea export --format aoti`."""
    from rhea_engine.native_trust import exported_here, sha256_of

    if not is_aoti:
        raise _not_rhea(file, "not an AOTInductor package")
    if not trust_native_code and not exported_here(home, sha256_of(file)):
        raise ModelFileError(
            f"{file} is an AOTInductor package: opening it loads the shared library inside it, "
            "which runs native code on this machine. The Rhea home "
            f"{home if home is not None else '(none given)'} did not export it (its sha256 is "
            "not on record), so it was not opened. If you trust where it comes from, pass "
            "--trust-native-code; a TorchScript export (.pt) holds no native code.",
            title="Untrusted native code",
        )
    try:
        with quiet_torchscript(), private_tmpdir():
            runner = torch._inductor.aoti_load_package(str(file))
    except Exception as exc:  # the loader raises many types for foreign files
        raise _not_rhea(file, f"the AOTInductor package does not load: {_first_line(exc)}") from exc
    metadata = runner.get_metadata() if hasattr(runner, "get_metadata") else {}
    if metadata.get("rhea_model") != "predict_all":
        raise _not_rhea(file, "the package has no Rhea metadata")
    card = _card_beside(file)
    device = str(metadata.get("rhea_device", card.get("device", "cpu")))
    layout = str(metadata.get("rhea_layout", card.get("layout", DEFAULT_LAYOUT)))
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
        layout=layout if layout in LAYOUTS else DEFAULT_LAYOUT,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_card(text: str, where: str) -> dict[str, Any]:
    """A model card's JSON object; anything else is a clear error naming `where`."""
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise ModelFileError(f"{where} is not valid JSON ({exc}); the file is damaged.") from None
    if not isinstance(card, dict):
        raise ModelFileError(
            f"{where} must be a JSON object, but it is a {type(card).__name__}; the file is "
            "damaged or was not written by `rhea export`."
        )
    if "config" in card and not isinstance(card["config"], dict):
        raise ModelFileError(f"{where} has a 'config' that is not a JSON object.")
    return card


def _card_beside(file: Path) -> dict[str, Any]:
    """The card beside a file (model.pt.card.json; model.card.json from older exports)."""
    for card in (
        file.with_name(file.name + ".card.json"),
        file.with_name(file.stem + ".card.json"),
    ):
        try:
            if not card.is_file():
                continue
            found = parse_card(card.read_text(), str(card))
        except (OSError, UnicodeDecodeError, ModelFileError):
            continue
        named = found.get("file", {}).get("name") if isinstance(found.get("file"), dict) else None
        if named in (None, file.name):
            return found
    return {}


def _card_NF(card: dict[str, Any]) -> int:
    try:
        return int(card.get("config", {}).get("NF", 3))
    except (TypeError, ValueError, AttributeError):
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

    from rhea_engine.data.io import refuse_complex

    file = Path(path).expanduser()
    if file.is_dir():
        raise DataError(f"The input file {file} is a directory; name an HDF5 file inside it.")
    if not file.is_file():
        raise DataError(f"The input file {file} does not exist.")
    try:
        with h5py.File(file, "r") as h5:
            if F4_INITIAL not in h5:
                raise DataError(
                    f"The input file {file} has no dataset '{F4_INITIAL}' (it has: "
                    f"{', '.join(sorted(h5.keys())) or 'nothing'})."
                )
            refuse_complex(h5[F4_INITIAL], F4_INITIAL, file)
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

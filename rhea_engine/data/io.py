"""Readers and writers of the asymptotic and stable HDF5 files, applying PHYSICS.md §1."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rhea_engine.data.schema import (
    CONSERVATION_TOLERANCE,
    F4_FINAL,
    F4_INITIAL,
    GROWTH_RATE,
    NEGATIVE_DENSITY_TOLERANCE,
    NF,
    STABLE,
    AsymptoticSet,
    FloatArray,
    StableSet,
)
from rhea_engine.errors import DataError
from rhea_engine.physics.fourflux import (
    FLUX_ABS_SLACK,
    FLUX_FACTOR_ROUNDING,
    conservation_error,
    flux_magnitude,
    ntot,
)

Kind = Literal["asymptotic", "stable"]


def _fail(path: Path, problem: str) -> DataError:
    return DataError(f"Cannot read the data file {path}: {problem}", title="Data error")


def _open(path: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Open an HDF5 file for reading, turning every way it can fail into a DataError."""
    import h5py

    p = Path(path).expanduser()
    if not p.exists():
        raise _fail(
            p,
            "the path does not exist. Check the spelling, or create synthetic data "
            "with `rhea data synth DIR`.",
        )
    if p.is_dir():
        raise _fail(
            p,
            "it is a directory, not a file. Name an HDF5 file inside it, e.g. "
            f"{p / 'asymptotic.h5'}.",
        )
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise _fail(p, f"it cannot be accessed ({exc.strerror}).") from None
    if size == 0:
        raise _fail(
            p,
            "the file is empty (0 bytes). It may be an unfinished copy or an "
            "interrupted write; copy or generate it again.",
        )
    try:
        is_hdf5 = h5py.is_hdf5(p)
    except OSError as exc:
        raise _fail(p, f"it cannot be read ({exc}).") from None
    if not is_hdf5:
        raise _fail(
            p,
            "it is not an HDF5 file. Rhea reads HDF5 files with the datasets "
            f"'{F4_INITIAL}' and either '{F4_FINAL}' + '{GROWTH_RATE}' (asymptotic) or "
            f"'{STABLE}' (stable).",
        )
    try:
        return p, h5py.File(p, "r")
    except OSError as exc:
        raise _fail(
            p, f"HDF5 could not open it ({exc}); the file may be truncated or corrupt."
        ) from None


def _kind_of(p: Path, h5: Any) -> Kind:
    names = set(h5.keys())
    if F4_INITIAL not in names:
        listing = ", ".join(sorted(names)) or "none"
        raise _fail(
            p,
            f"the dataset '{F4_INITIAL}' is missing (datasets present: {listing}). "
            "Both asymptotic and stable files need it.",
        )
    if F4_FINAL in names or GROWTH_RATE in names:
        return "asymptotic"
    if STABLE in names:
        return "stable"
    raise _fail(
        p,
        f"it has '{F4_INITIAL}' but neither '{F4_FINAL}' and '{GROWTH_RATE}' "
        f"(an asymptotic file) nor '{STABLE}' (a stable file).",
    )


def detect_kind(path: str | os.PathLike[str]) -> Kind:
    """'asymptotic' or 'stable', from the datasets a file holds."""
    p, h5 = _open(path)
    with h5:
        return _kind_of(p, h5)


def _dataset(p: Path, h5: Any, name: str) -> FloatArray:
    import h5py

    if name not in h5:
        listing = ", ".join(sorted(h5.keys())) or "none"
        raise _fail(p, f"the dataset '{name}' is missing (datasets present: {listing}).")
    obj = h5[name]
    if not isinstance(obj, h5py.Dataset):
        raise _fail(p, f"'{name}' is a group, not a dataset.")
    refuse_complex(obj, name, p)
    try:
        return np.asarray(obj[()], dtype=np.float64)
    except (TypeError, ValueError, OSError) as exc:
        raise _fail(p, f"the dataset '{name}' cannot be read as numbers ({exc}).") from None


def refuse_complex(dataset: Any, name: str, path: Path) -> None:
    """Complex numbers are refused, never cut to their real part (h5py stores them as compounds)."""
    if np.dtype(getattr(dataset, "dtype", None) or "f8").kind == "c":
        raise _fail(
            path,
            f"the dataset '{name}' holds complex numbers ({dataset.dtype}); four-fluxes, growth "
            "rates and labels are real. Rhea does not drop imaginary parts: write the real "
            "values you mean.",
        )


def _read_f4(p: Path, h5: Any, name: str) -> tuple[FloatArray, int]:
    F4 = _dataset(p, h5, name)
    if F4.ndim != 4 or F4.shape[1] != 4 or F4.shape[2] != 2 or F4.shape[3] < 1:
        raise _fail(
            p,
            f"the dataset '{name}' has shape {list(F4.shape)}, but it must be "
            "[N, 4, 2, NF] (F_x, F_y, F_z, N; neutrino and antineutrino; flavors).",
        )
    nf = F4.shape[3]
    if NF in h5:
        nf_raw = _dataset(p, h5, NF)
        if (
            nf_raw.size != 1
            or not np.isfinite(nf_raw).all()
            or float(nf_raw.flat[0]) != int(nf_raw.flat[0])
        ):
            raise _fail(
                p, f"'{NF}' must be one integer (the number of flavors), got {nf_raw.tolist()}."
            )
        if int(nf_raw.flat[0]) != nf:
            raise _fail(
                p,
                f"'{NF}' says {int(nf_raw.flat[0])} flavors but '{name}' has {nf} "
                "(its last axis). Fix 'nf' or the tensor.",
            )
    return F4, nf


def _zero_negative(p: Path, F4: FloatArray, name: str) -> int:
    """Zero slightly negative densities (with their flux) in place; refuse large negative ones."""
    n = F4[:, 3]
    negative = n < 0
    if not negative.any():
        return 0
    scale = ntot(np.where(F4 > 0, F4, 0.0)) if F4.shape[0] else np.zeros(0)
    limit = NEGATIVE_DENSITY_TOLERANCE * scale[:, None, None]
    too_negative = negative & (-n > limit)
    if too_negative.any():
        row = int(np.argwhere(too_negative)[0][0])
        raise _fail(
            p,
            f"{int(too_negative.any(axis=(1, 2)).sum())} row(s) of '{name}' have a "
            f"number density below -{NEGATIVE_DENSITY_TOLERANCE:g} of ntot (first: row "
            f"{row}); densities must be >= 0.",
        )
    rows, s, a = np.nonzero(negative)
    F4[rows, :, s, a] = 0.0
    return int(negative.any(axis=(1, 2)).sum())


def _check_flux_factor(p: Path, F4: FloatArray, name: str) -> None:
    n = F4[:, 3]
    limit = n * (1 + FLUX_FACTOR_ROUNDING) + FLUX_ABS_SLACK * ntot(F4)[:, None, None]
    bad = flux_magnitude(F4) > limit
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=(1, 2)))
        fmag = flux_magnitude(F4[rows[:1]])[0]
        f = np.max(fmag / np.where(n[rows[0]] > 0, n[rows[0]], np.inf))
        raise _fail(
            p,
            f"{rows.size} row(s) of '{name}' have a flux factor |F|/N above 1 "
            f"(first: row {int(rows[0])}, f = {f:.6g}"
            + ("" if np.isfinite(f) else ", N = 0")
            + "); a flux larger than the density is unphysical.",
        )


def _finite_rows(*arrays: FloatArray) -> np.ndarray:
    keep = np.ones(arrays[0].shape[0], dtype=bool)
    for arr in arrays:
        if arr.shape[0]:
            keep &= np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    return keep


def _check_rows(p: Path, n_rows: int, keep: np.ndarray) -> int:
    if n_rows == 0:
        raise _fail(p, "it contains no samples (zero rows).")
    dropped = int(n_rows - keep.sum())
    if dropped == n_rows:
        raise _fail(
            p, f"all {n_rows} rows contain non-finite values (NaN or inf); nothing is left."
        )
    return dropped


def load_asymptotic(path: str | os.PathLike[str]) -> AsymptoticSet:
    """Read and validate an asymptotic file (rows with non-finite values are dropped and counted)."""
    p, h5 = _open(path)
    with h5:
        if _kind_of(p, h5) == "stable":
            raise _fail(
                p,
                f"it is a stable file ('{F4_INITIAL}' and '{STABLE}'), not an "
                f"asymptotic one; the datasets '{F4_FINAL}' and '{GROWTH_RATE}' are "
                "missing. Pass it as stable data (--stable-data) instead.",
            )
        F4_initial, nf = _read_f4(p, h5, F4_INITIAL)
        F4_final, _ = _read_f4(p, h5, F4_FINAL)
        growth = _dataset(p, h5, GROWTH_RATE)
    n_rows = F4_initial.shape[0]
    if F4_final.shape != F4_initial.shape:
        raise _fail(
            p,
            f"'{F4_FINAL}' has shape {list(F4_final.shape)} but '{F4_INITIAL}' has "
            f"{list(F4_initial.shape)}; they must match.",
        )
    if growth.shape != (n_rows,):
        raise _fail(
            p,
            f"'{GROWTH_RATE}' has shape {list(growth.shape)}, but it must be [{n_rows}] "
            "(one growth rate per row).",
        )
    keep = _finite_rows(F4_initial, F4_final, growth)
    dropped = _check_rows(p, n_rows, keep)
    if dropped:
        F4_initial, F4_final, growth = F4_initial[keep], F4_final[keep], growth[keep]
    if np.any(growth <= 0):
        bad = np.flatnonzero(growth <= 0)
        raise _fail(
            p,
            f"{bad.size} growth rate(s) in '{GROWTH_RATE}' are not positive (first: "
            f"{growth[bad[0]]:g}); an asymptotic file holds unstable rows only, with "
            "sigma > 0 in 1/s.",
        )
    zeroed = _zero_negative(p, F4_initial, F4_INITIAL) + _zero_negative(p, F4_final, F4_FINAL)
    _check_flux_factor(p, F4_initial, F4_INITIAL)
    _check_flux_factor(p, F4_final, F4_FINAL)
    err = conservation_error(F4_initial, F4_final)
    max_err = float(err.max()) if err.size else 0.0
    if max_err > CONSERVATION_TOLERANCE:
        bad = np.flatnonzero(err > CONSERVATION_TOLERANCE)
        raise _fail(
            p,
            f"{bad.size} row(s) do not conserve the flavor-summed four-flux of "
            f"neutrinos and antineutrinos to {CONSERVATION_TOLERANCE:g} of ntot (worst: "
            f"{max_err:.3g} at row {int(err.argmax())}); initial and final states may be "
            "mismatched.",
        )
    return AsymptoticSet(
        F4_initial=F4_initial,
        F4_final=F4_final,
        growth_rate=growth,
        nf=nf,
        path=p,
        n_dropped_nonfinite=dropped,
        max_conservation_error=max_err,
        n_zeroed_negative=zeroed,
    )


def load_stable(path: str | os.PathLike[str]) -> StableSet:
    """Read and validate a stable file (labels 1 = stable, 0 = unstable, returned as floats)."""
    p, h5 = _open(path)
    with h5:
        if STABLE not in h5 and F4_INITIAL in h5:
            asymptotic = F4_FINAL in h5 or GROWTH_RATE in h5
            hint = (
                " (this looks like an asymptotic file: pass it as --data)." if asymptotic else "."
            )
            raise _fail(
                p,
                f"the dataset '{STABLE}' is missing; a stable file needs "
                f"'{F4_INITIAL}' and '{STABLE}'" + hint,
            )
        _kind_of(p, h5)
        F4_initial, nf = _read_f4(p, h5, F4_INITIAL)
        stable = _dataset(p, h5, STABLE)
    n_rows = F4_initial.shape[0]
    if stable.shape != (n_rows,):
        raise _fail(
            p,
            f"'{STABLE}' has shape {list(stable.shape)}, but it must be [{n_rows}] "
            "(one label per row).",
        )
    keep = _finite_rows(F4_initial, stable)
    dropped = _check_rows(p, n_rows, keep)
    if dropped:
        F4_initial, stable = F4_initial[keep], stable[keep]
    if not np.all((stable == 0) | (stable == 1)):
        bad = stable[(stable != 0) & (stable != 1)]
        raise _fail(
            p,
            f"'{STABLE}' must hold 0 or 1 (1 = stable), but {bad.size} value(s) do "
            f"not (first: {bad[0]:g}).",
        )
    zeroed = _zero_negative(p, F4_initial, F4_INITIAL)
    _check_flux_factor(p, F4_initial, F4_INITIAL)
    return StableSet(
        F4_initial=F4_initial,
        stable=stable,
        nf=nf,
        path=p,
        n_dropped_nonfinite=dropped,
        n_zeroed_negative=zeroed,
    )


def _atomic_write(path: str | os.PathLike[str], datasets: dict[str, np.ndarray], nf: int) -> Path:
    import h5py

    p = Path(path).expanduser()
    if p.is_dir():
        raise DataError(
            f"Cannot write {p}: it is a directory. Give a file name such as {p / 'data.h5'}."
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            for name, values in datasets.items():
                h5.create_dataset(name, data=values)
            h5.create_dataset(NF, data=np.int64(nf))
        os.replace(tmp, p)
    except OSError as exc:
        raise DataError(f"Cannot write the data file {p}: {exc}.") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _as_f4(values: Any, name: str) -> FloatArray:
    F4 = np.asarray(values, dtype=np.float64)
    if F4.ndim != 4 or F4.shape[1] != 4 or F4.shape[2] != 2:
        raise DataError(f"{name} must have shape [N, 4, 2, NF], got {list(F4.shape)}.")
    return F4


def write_asymptotic(
    path: str | os.PathLike[str], F4_initial: Any, F4_final: Any, growth_rate: Any
) -> Path:
    """Write an asymptotic file (float64, written to a temporary name and renamed into place)."""
    initial, final = _as_f4(F4_initial, "F4_initial"), _as_f4(F4_final, "F4_final")
    growth = np.asarray(growth_rate, dtype=np.float64)
    if final.shape != initial.shape or growth.shape != (initial.shape[0],):
        raise DataError(
            f"F4_initial {list(initial.shape)}, F4_final {list(final.shape)} and "
            f"growth_rate {list(growth.shape)} must describe the same rows."
        )
    return _atomic_write(
        path, {F4_INITIAL: initial, F4_FINAL: final, GROWTH_RATE: growth}, initial.shape[3]
    )


def write_stable(path: str | os.PathLike[str], F4_initial: Any, stable: Any) -> Path:
    """Write a stable file (F4 float64, labels 1.0 = stable, 0.0 = unstable)."""
    initial = _as_f4(F4_initial, "F4_initial")
    labels = np.asarray(stable, dtype=np.float64)
    if labels.shape != (initial.shape[0],):
        raise DataError(
            f"stable has shape {list(labels.shape)} but F4_initial has {initial.shape[0]} rows."
        )
    return _atomic_write(path, {F4_INITIAL: initial, STABLE: labels}, initial.shape[3])

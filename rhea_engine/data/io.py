"""Readers and writers of the asymptotic and stable HDF5 files, applying docs/physics.md §1."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rhea_engine.data.checks import (
    RowFindings,
    check_asymptotic_rows,
    check_row_count,
    check_stable_rows,
    finite_rows,
)
from rhea_engine.data.checks import data_error as _fail
from rhea_engine.data.schema import (
    F4_FINAL,
    F4_INITIAL,
    GROWTH_RATE,
    NF,
    STABLE,
    AsymptoticSet,
    FloatArray,
    StableSet,
)
from rhea_engine.errors import DataError

Kind = Literal["asymptotic", "stable"]


def open_hdf5(path: str | os.PathLike[str]) -> tuple[Path, Any]:
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


def kind_of(p: Path, h5: Any) -> Kind:
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
    p, h5 = open_hdf5(path)
    with h5:
        return kind_of(p, h5)


def dataset_of(p: Path, h5: Any, name: str) -> Any:
    """The h5py dataset `name` of an open file, without reading it; DataError if it is missing."""
    import h5py

    if name not in h5:
        listing = ", ".join(sorted(h5.keys())) or "none"
        raise _fail(p, f"the dataset '{name}' is missing (datasets present: {listing}).")
    obj = h5[name]
    if not isinstance(obj, h5py.Dataset):
        raise _fail(p, f"'{name}' is a group, not a dataset.")
    refuse_complex(obj, name, p)
    return obj


def read_rows(p: Path, obj: Any, name: str, rows: slice | None = None) -> FloatArray:
    """Dataset `obj` (or the rows `rows` of it) as float64; DataError if it is not numbers."""
    try:
        return np.asarray(obj[()] if rows is None else obj[rows], dtype=np.float64)
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


def _dataset(p: Path, h5: Any, name: str) -> FloatArray:
    return read_rows(p, dataset_of(p, h5, name), name)


def f4_layout(p: Path, h5: Any, name: str) -> tuple[int, int]:
    """(rows, NF) of the four-flux dataset `name`, from its shape and 'nf', without reading it."""
    shape = tuple(dataset_of(p, h5, name).shape or ())
    if len(shape) != 4 or shape[1] != 4 or shape[2] != 2 or shape[3] < 1:
        raise _fail(
            p,
            f"the dataset '{name}' has shape {list(shape)}, but it must be "
            "[N, 4, 2, NF] (F_x, F_y, F_z, N; neutrino and antineutrino; flavors).",
        )
    nf = int(shape[3])
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
    return int(shape[0]), nf


def asymptotic_layout(p: Path, h5: Any) -> tuple[int, int]:
    """(rows, NF) of an asymptotic file, its three datasets' shapes checked against each other."""
    n_rows, nf = f4_layout(p, h5, F4_INITIAL)
    final_shape = list(dataset_of(p, h5, F4_FINAL).shape or ())
    f4_layout(p, h5, F4_FINAL)
    initial_shape = list(dataset_of(p, h5, F4_INITIAL).shape)
    if final_shape != initial_shape:
        raise _fail(
            p,
            f"'{F4_FINAL}' has shape {final_shape} but '{F4_INITIAL}' has "
            f"{initial_shape}; they must match.",
        )
    growth_shape = tuple(dataset_of(p, h5, GROWTH_RATE).shape or ())
    if growth_shape != (n_rows,):
        raise _fail(
            p,
            f"'{GROWTH_RATE}' has shape {list(growth_shape)}, but it must be [{n_rows}] "
            "(one growth rate per row).",
        )
    return n_rows, nf


def stable_layout(p: Path, h5: Any) -> tuple[int, int]:
    """(rows, NF) of a stable file, the label dataset's shape checked."""
    if STABLE not in h5 and F4_INITIAL in h5:
        asymptotic = F4_FINAL in h5 or GROWTH_RATE in h5
        hint = " (this looks like an asymptotic file: pass it as --data)." if asymptotic else "."
        raise _fail(
            p,
            f"the dataset '{STABLE}' is missing; a stable file needs "
            f"'{F4_INITIAL}' and '{STABLE}'" + hint,
        )
    kind_of(p, h5)
    n_rows, nf = f4_layout(p, h5, F4_INITIAL)
    label_shape = tuple(dataset_of(p, h5, STABLE).shape or ())
    if label_shape != (n_rows,):
        raise _fail(
            p,
            f"'{STABLE}' has shape {list(label_shape)}, but it must be [{n_rows}] "
            "(one label per row).",
        )
    return n_rows, nf


def refuse_wrong_kind(p: Path, h5: Any, wanted: Kind) -> None:
    """DataError when an open file is of the other kind than `wanted`, with the flag to use."""
    if wanted == "asymptotic" and kind_of(p, h5) == "stable":
        raise _fail(
            p,
            f"it is a stable file ('{F4_INITIAL}' and '{STABLE}'), not an "
            f"asymptotic one; the datasets '{F4_FINAL}' and '{GROWTH_RATE}' are "
            "missing. Pass it as stable data (--stable-data) instead.",
        )


def clean_asymptotic(
    F4_initial: FloatArray, F4_final: FloatArray, growth: FloatArray, first_row: int = 0
) -> tuple[FloatArray, FloatArray, FloatArray, int, RowFindings]:
    """Rows of an asymptotic file (or chunk) with non-finite ones dropped and small negative
    densities zeroed: (initial, final, growth, rows zeroed, findings)."""
    keep = finite_rows(F4_initial, F4_final, growth)
    rows = np.flatnonzero(keep) + first_row
    if not keep.all():
        F4_initial, F4_final, growth = F4_initial[keep], F4_final[keep], growth[keep]
    findings = RowFindings()
    zeroed = check_asymptotic_rows(F4_initial, F4_final, growth, rows, findings)
    return F4_initial, F4_final, growth, zeroed, findings


def clean_stable(
    F4_initial: FloatArray, labels: FloatArray, first_row: int = 0
) -> tuple[FloatArray, FloatArray, int, RowFindings]:
    """Rows of a stable file (or chunk), cleaned as `clean_asymptotic` does."""
    keep = finite_rows(F4_initial, labels)
    rows = np.flatnonzero(keep) + first_row
    if not keep.all():
        F4_initial, labels = F4_initial[keep], labels[keep]
    findings = RowFindings()
    zeroed = check_stable_rows(F4_initial, labels, rows, findings)
    return F4_initial, labels, zeroed, findings


def load_asymptotic(path: str | os.PathLike[str]) -> AsymptoticSet:
    """Read and validate an asymptotic file (rows with non-finite values are dropped and counted)."""
    p, h5 = open_hdf5(path)
    with h5:
        refuse_wrong_kind(p, h5, "asymptotic")
        n_rows, nf = asymptotic_layout(p, h5)
        F4_initial = _dataset(p, h5, F4_INITIAL)
        F4_final = _dataset(p, h5, F4_FINAL)
        growth = _dataset(p, h5, GROWTH_RATE)
    F4_initial, F4_final, growth, zeroed, findings = clean_asymptotic(F4_initial, F4_final, growth)
    dropped = n_rows - F4_initial.shape[0]
    check_row_count(p, n_rows, dropped)
    findings.raise_first(p)
    return AsymptoticSet(
        F4_initial=F4_initial,
        F4_final=F4_final,
        growth_rate=growth,
        nf=nf,
        path=p,
        n_dropped_nonfinite=dropped,
        max_conservation_error=findings.max_conservation_error,
        n_zeroed_negative=zeroed,
    )


def load_stable(path: str | os.PathLike[str]) -> StableSet:
    """Read and validate a stable file (labels 1 = stable, 0 = unstable, returned as floats)."""
    p, h5 = open_hdf5(path)
    with h5:
        n_rows, nf = stable_layout(p, h5)
        F4_initial = _dataset(p, h5, F4_INITIAL)
        stable = _dataset(p, h5, STABLE)
    F4_initial, stable, zeroed, findings = clean_stable(F4_initial, stable)
    dropped = n_rows - F4_initial.shape[0]
    check_row_count(p, n_rows, dropped)
    findings.raise_first(p)
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

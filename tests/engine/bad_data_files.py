"""Malformed data files for the reader and `rhea data inspect` tests: one writer per case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from rhea_engine.data.schema import F4_FINAL, F4_INITIAL, GROWTH_RATE, NF, STABLE


def _good(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    F4 = np.zeros((n, 4, 2, 3))
    F4[:, 3] = rng.uniform(1.0, 2.0, (n, 2, 3)) * 1e32
    F4[:, 2] = 0.3 * F4[:, 3]
    return F4, np.full(n, 1e9)


def _asym(
    path: Path, F4i: np.ndarray, F4f: np.ndarray, rate: np.ndarray, nf: int | None = 3
) -> Path:
    with h5py.File(path, "w") as h5:
        h5.create_dataset(F4_INITIAL, data=F4i)
        h5.create_dataset(F4_FINAL, data=F4f)
        h5.create_dataset(GROWTH_RATE, data=rate)
        if nf is not None:
            h5.create_dataset(NF, data=nf)
    return path


def not_hdf5(d: Path) -> Path:
    p = d / "notes.h5"
    p.write_text("this is a text file, not HDF5\n")
    return p


def missing_dataset(d: Path) -> Path:
    F4, _ = _good()
    with h5py.File(d / "missing.h5", "w") as h5:
        h5.create_dataset(F4_INITIAL, data=F4)
        h5.create_dataset(F4_FINAL, data=F4)
        h5.create_dataset(NF, data=3)
    return d / "missing.h5"


def wrong_shape(d: Path) -> Path:
    F4, rate = _good()
    return _asym(d / "shape.h5", F4[:, :3], F4[:, :3], rate)


def nf_mismatch(d: Path) -> Path:
    F4, rate = _good()
    return _asym(d / "nf.h5", F4, F4, rate, nf=2)


def all_nonfinite(d: Path) -> Path:
    F4, rate = _good()
    F4[:, 0, 0, 0] = np.nan
    return _asym(d / "nan.h5", F4, F4, rate)


def negative_growth(d: Path) -> Path:
    F4, rate = _good()
    rate[3] = -5.0
    return _asym(d / "negrate.h5", F4, F4, rate)


def flux_above_one(d: Path) -> Path:
    F4, rate = _good()
    F4[2, 0, 1, 1] = 1.5 * F4[2, 3, 1, 1]
    return _asym(d / "flux.h5", F4, F4, rate)


def empty_file(d: Path) -> Path:
    p = d / "empty.h5"
    p.write_bytes(b"")
    return p


def empty_hdf5(d: Path) -> Path:
    p = d / "nothing.h5"
    with h5py.File(p, "w"):
        pass
    return p


def zero_rows(d: Path) -> Path:
    F4 = np.zeros((0, 4, 2, 3))
    return _asym(d / "zero.h5", F4, F4, np.zeros(0))


def not_conserving(d: Path) -> Path:
    F4, rate = _good()
    final = F4.copy()
    final[1, 3, 0, 0] *= 1.5
    return _asym(d / "conserve.h5", F4, final, rate)


def bad_labels(d: Path) -> Path:
    F4, _ = _good()
    with h5py.File(d / "labels.h5", "w") as h5:
        h5.create_dataset(F4_INITIAL, data=F4)
        h5.create_dataset(STABLE, data=np.full(F4.shape[0], 0.5))
        h5.create_dataset(NF, data=3)
    return d / "labels.h5"


def does_not_exist(d: Path) -> Path:
    return d / "no-such-file.h5"


def directory(d: Path) -> Path:
    (d / "adir.h5").mkdir()
    return d / "adir.h5"


#: case name -> (writer, a phrase the one-paragraph message must contain)
def complex_values(d: Path) -> Path:
    F4, rate = _good()
    with_imaginary = F4 + 1j * 1e31  # the real part alone would pass every check
    return _asym(d / "complex.h5", with_imaginary, with_imaginary.copy(), rate)


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "not_hdf5": (not_hdf5, "not an HDF5 file"),
    "missing_dataset": (missing_dataset, f"'{GROWTH_RATE}' is missing"),
    "wrong_shape": (wrong_shape, "[N, 4, 2, NF]"),
    "nf_mismatch": (nf_mismatch, "'nf' says 2 flavors"),
    "all_nonfinite": (all_nonfinite, "non-finite"),
    "negative_growth": (negative_growth, "not positive"),
    "flux_above_one": (flux_above_one, "flux factor |F|/N above 1"),
    "empty_file": (empty_file, "empty (0 bytes)"),
    "empty_hdf5": (empty_hdf5, f"'{F4_INITIAL}' is missing"),
    "zero_rows": (zero_rows, "no samples"),
    "not_conserving": (not_conserving, "do not conserve"),
    "bad_labels": (bad_labels, "must hold 0 or 1"),
    "does_not_exist": (does_not_exist, "does not exist"),
    "directory": (directory, "is a directory"),
    "complex_values": (complex_values, "holds complex numbers"),
}

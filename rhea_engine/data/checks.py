"""Row checks of the data files (docs/physics.md §1), shared by the readers and the chunked scan.

Each check records what it finds in a `RowFindings` (a count, the first file row, a value)
instead of raising, so that a file read in chunks gets the same message, with the same
counts, as the file read whole: `RowFindings.raise_first` names the first problem in a
fixed order once every row has been seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rhea_engine.data.schema import (
    CONSERVATION_TOLERANCE,
    F4_FINAL,
    F4_INITIAL,
    GROWTH_RATE,
    NEGATIVE_DENSITY_TOLERANCE,
    STABLE,
    FloatArray,
)
from rhea_engine.errors import DataError
from rhea_engine.physics.fourflux import (
    FLUX_ABS_SLACK,
    FLUX_FACTOR_ROUNDING,
    conservation_error,
    flux_magnitude,
    ntot,
)

Rows = NDArray[np.int64]


def data_error(path: Path, problem: str) -> DataError:
    """The one shape of a data file's error message."""
    return DataError(f"Cannot read the data file {path}: {problem}", title="Data error")


@dataclass
class Finding:
    """One kind of problem: how many rows have it, the first (or worst) row and its value."""

    count: int
    row: int
    value: float


# The order in which problems are reported when a file has several.
_ORDER = (
    "growth",
    "labels",
    f"negative:{F4_INITIAL}",
    f"negative:{F4_FINAL}",
    f"flux:{F4_INITIAL}",
    f"flux:{F4_FINAL}",
    "conservation",
)


class RowFindings:
    """Problems found in the rows of one file, over one or more chunks."""

    def __init__(self) -> None:
        self.found: dict[str, Finding] = {}
        self.max_conservation_error = 0.0

    def add(self, key: str, count: int, row: int, value: float, worst: bool = False) -> None:
        """Count `count` more rows with problem `key`; the first one seen is kept (the one with
        the largest value, when `worst`)."""
        if count <= 0:
            return
        old = self.found.get(key)
        if old is None:
            self.found[key] = Finding(count, row, value)
            return
        old.count += count
        if worst and value > old.value:
            old.row, old.value = row, value

    def merge(self, other: RowFindings) -> None:
        """Add the findings of another chunk of the same file."""
        for key, finding in other.found.items():
            self.add(key, finding.count, finding.row, finding.value, worst=key == "conservation")
        self.max_conservation_error = max(self.max_conservation_error, other.max_conservation_error)

    def raise_first(self, path: Path) -> None:
        """DataError for the first problem found (in a fixed order); nothing if there is none."""
        for key in _ORDER:
            if key in self.found:
                raise data_error(path, _message(key, self.found[key]))


def _message(key: str, f: Finding) -> str:
    kind, _, dataset = key.partition(":")
    if kind == "growth":
        return (
            f"{f.count} growth rate(s) in '{GROWTH_RATE}' are not positive (first: "
            f"{f.value:g}, row {f.row}); an asymptotic file holds unstable rows only, with "
            "sigma > 0 in 1/s."
        )
    if kind == "negative":
        return (
            f"{f.count} row(s) of '{dataset}' have a number density below "
            f"-{NEGATIVE_DENSITY_TOLERANCE:g} of ntot (first: row {f.row}); densities must "
            "be >= 0."
        )
    if kind == "labels":
        return (
            f"'{STABLE}' must hold 0 or 1 (1 = stable), but {f.count} value(s) do not "
            f"(first: {f.value:g}, row {f.row})."
        )
    if kind == "flux":
        n_zero = "" if np.isfinite(f.value) else ", N = 0"
        return (
            f"{f.count} row(s) of '{dataset}' have a flux factor |F|/N above 1 (first: row "
            f"{f.row}, f = {f.value:.6g}{n_zero}); a flux larger than the density is unphysical."
        )
    return (
        f"{f.count} row(s) do not conserve the flavor-summed four-flux of neutrinos and "
        f"antineutrinos to {CONSERVATION_TOLERANCE:g} of ntot (worst: {f.value:.3g} at row "
        f"{f.row}); initial and final states may be mismatched."
    )


def finite_rows(*arrays: FloatArray) -> NDArray[np.bool_]:
    """True for the rows where every array is finite."""
    keep = np.ones(arrays[0].shape[0], dtype=bool)
    for arr in arrays:
        if arr.shape[0]:
            keep &= np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    return keep


def zero_negative(F4: FloatArray, dataset: str, rows: Rows, findings: RowFindings) -> int:
    """Zero slightly negative densities (with their flux) in place; record large negative ones.

    Returns the number of rows zeroed.
    """
    n = F4[:, 3]
    negative = n < 0
    if not negative.any():
        return 0
    scale = ntot(np.where(F4 > 0, F4, 0.0))
    too_negative = (negative & (-n > NEGATIVE_DENSITY_TOLERANCE * scale[:, None, None])).any(
        axis=(1, 2)
    )
    if too_negative.any():
        first = int(np.flatnonzero(too_negative)[0])
        findings.add(f"negative:{dataset}", int(too_negative.sum()), int(rows[first]), 0.0)
    r, s, a = np.nonzero(negative)
    F4[r, :, s, a] = 0.0
    return int(negative.any(axis=(1, 2)).sum())


def check_flux_factor(F4: FloatArray, dataset: str, rows: Rows, findings: RowFindings) -> None:
    """Record rows whose flux factor |F|/N exceeds 1 beyond rounding."""
    n = F4[:, 3]
    limit = n * (1 + FLUX_FACTOR_ROUNDING) + FLUX_ABS_SLACK * ntot(F4)[:, None, None]
    fmag = flux_magnitude(F4)
    bad = (fmag > limit).any(axis=(1, 2))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        density = n[first]
        f = float(np.max(fmag[first] / np.where(density > 0, density, np.inf)))
        findings.add(f"flux:{dataset}", int(bad.sum()), int(rows[first]), f)


def check_asymptotic_rows(
    F4_initial: FloatArray,
    F4_final: FloatArray,
    growth: FloatArray,
    rows: Rows,
    findings: RowFindings,
) -> int:
    """The checks of finite asymptotic rows (densities zeroed in place); returns rows zeroed."""
    not_positive = growth <= 0
    if not_positive.any():
        first = int(np.flatnonzero(not_positive)[0])
        findings.add("growth", int(not_positive.sum()), int(rows[first]), float(growth[first]))
    zeroed = zero_negative(F4_initial, F4_INITIAL, rows, findings)
    zeroed += zero_negative(F4_final, F4_FINAL, rows, findings)
    check_flux_factor(F4_initial, F4_INITIAL, rows, findings)
    check_flux_factor(F4_final, F4_FINAL, rows, findings)
    err = conservation_error(F4_initial, F4_final)
    if err.size:
        worst = int(err.argmax())
        findings.max_conservation_error = max(findings.max_conservation_error, float(err[worst]))
        bad = int((err > CONSERVATION_TOLERANCE).sum())
        findings.add("conservation", bad, int(rows[worst]), float(err[worst]), worst=True)
    return zeroed


def check_stable_rows(
    F4_initial: FloatArray, labels: FloatArray, rows: Rows, findings: RowFindings
) -> int:
    """The checks of finite stable rows (densities zeroed in place); returns rows zeroed."""
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        findings.add("labels", int(bad.sum()), int(rows[first]), float(labels[first]))
    zeroed = zero_negative(F4_initial, F4_INITIAL, rows, findings)
    check_flux_factor(F4_initial, F4_INITIAL, rows, findings)
    return zeroed


def check_row_count(path: Path, n_rows: int, n_dropped: int) -> None:
    """DataError for a file without rows, or whose every row holds a non-finite value."""
    if n_rows == 0:
        raise data_error(path, "it contains no samples (zero rows).")
    if n_dropped == n_rows:
        raise data_error(
            path,
            f"all {n_rows} rows contain non-finite values (NaN or inf); nothing is left.",
        )

"""Check a whole data file before a run uses it: the readers' rules, applied chunk by chunk.

`check_file` reads the schema (datasets, shapes, 'nf') without loading anything, then scans
the rows in chunks of `CHUNK_ROWS` with the very checks `load_asymptotic`/`load_stable`
apply, so a file passes here exactly when the training process can read it, and the
error names the same problem with the same counts. Memory stays at one chunk whatever the
file's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rhea_engine.data.checks import RowFindings, check_row_count
from rhea_engine.data.io import (
    Kind,
    asymptotic_layout,
    clean_asymptotic,
    clean_stable,
    dataset_of,
    kind_of,
    open_hdf5,
    read_rows,
    refuse_wrong_kind,
    stable_layout,
)
from rhea_engine.data.schema import F4_FINAL, F4_INITIAL, GROWTH_RATE, STABLE

#: Rows read at a time: ~13 MB per four-flux dataset in float64.
CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class FileReport:
    """What the scan of one data file found (it passed every check)."""

    path: Path
    kind: Kind
    nf: int
    rows: int
    n_dropped_nonfinite: int
    n_zeroed_negative: int
    max_conservation_error: float | None

    @property
    def usable_rows(self) -> int:
        return self.rows - self.n_dropped_nonfinite


def _scan(
    p: Path, h5: Any, kind: Kind, n_rows: int, chunk_rows: int
) -> tuple[int, int, RowFindings]:
    """(rows dropped as non-finite, rows zeroed, findings) over every chunk of the file."""
    names = (F4_INITIAL, F4_FINAL, GROWTH_RATE) if kind == "asymptotic" else (F4_INITIAL, STABLE)
    datasets = [dataset_of(p, h5, name) for name in names]
    total = RowFindings()
    kept = zeroed = 0
    for start in range(0, n_rows, chunk_rows):
        rows = slice(start, min(start + chunk_rows, n_rows))
        arrays = [read_rows(p, obj, name, rows) for obj, name in zip(datasets, names, strict=True)]
        if kind == "asymptotic":
            initial, final, growth = arrays
            F4_initial, _, _, zeroed_here, found = clean_asymptotic(initial, final, growth, start)
        else:
            initial, labels = arrays
            F4_initial, _, zeroed_here, found = clean_stable(initial, labels, start)
        kept += F4_initial.shape[0]
        zeroed += zeroed_here
        total.merge(found)
    return n_rows - kept, zeroed, total


def check_file(
    path: str | os.PathLike[str], kind: Kind | None = None, chunk_rows: int = CHUNK_ROWS
) -> FileReport:
    """Validate a data file as the readers would, without holding it in memory.

    `kind`: the kind the caller expects ("asymptotic" or "stable"); None accepts either.
    Raises DataError, with the reader's one-paragraph message, on the first problem.
    """
    p, h5 = open_hdf5(path)
    with h5:
        found = kind_of(p, h5)
        if kind is not None:
            refuse_wrong_kind(p, h5, kind)
        kind = kind or found
        n_rows, nf = asymptotic_layout(p, h5) if kind == "asymptotic" else stable_layout(p, h5)
        dropped, zeroed, findings = _scan(p, h5, kind, n_rows, max(1, chunk_rows))
    check_row_count(p, n_rows, dropped)
    findings.raise_first(p)
    return FileReport(
        path=p,
        kind=kind,
        nf=nf,
        rows=n_rows,
        n_dropped_nonfinite=dropped,
        n_zeroed_negative=zeroed,
        max_conservation_error=findings.max_conservation_error if kind == "asymptotic" else None,
    )

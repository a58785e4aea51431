"""The chunked data check finds exactly what the readers find, in any chunk, with exact counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bad_data_files import CASES
from conftest import random_f4

from rhea_engine.data import load_asymptotic, load_stable, write_asymptotic, write_stable
from rhea_engine.data.validate import check_file
from rhea_engine.errors import DataError


def _loader(case: str):  # type: ignore[no-untyped-def]
    return load_stable if case == "bad_labels" else load_asymptotic


@pytest.mark.parametrize("chunk_rows", [3, 1 << 16])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_malformed_file_gets_the_readers_message(
    tmp_path: Path, case: str, chunk_rows: int
) -> None:
    writer, phrase = CASES[case]
    path = writer(tmp_path)
    with pytest.raises(DataError) as read:
        _loader(case)(path)
    with pytest.raises(DataError) as checked:
        check_file(path, chunk_rows=chunk_rows)
    assert checked.value.message == read.value.message
    assert phrase in checked.value.message


def _messy_asymptotic(tmp_path: Path) -> Path:
    """Rows (final = initial) with non-finite values and slightly negative densities spread
    over several chunks."""
    F4i = random_f4(30, seed=11)
    F4f, rate = F4i.copy(), np.full(30, 1e9)
    F4i[2, 0, 0, 0] = np.nan
    F4f[29, 3, 1, 2] = np.inf
    rate[9] = np.nan
    for row in (4, 26):
        for F4 in (F4i, F4f):
            F4[row, 3, 1, 1] = -1e-6 * F4[row, 3].sum()
            F4[row, :3, 1, 1] = 0.0
    return write_asymptotic(tmp_path / "messy.h5", F4i, F4f, rate)


@pytest.mark.parametrize("chunk_rows", [1, 4, 7, 1 << 16])
def test_a_readable_file_reports_what_the_reader_reports(tmp_path: Path, chunk_rows: int) -> None:
    path = _messy_asymptotic(tmp_path)
    loaded = load_asymptotic(path)
    report = check_file(path, "asymptotic", chunk_rows=chunk_rows)
    assert report.kind == "asymptotic" and report.nf == loaded.nf == 3
    assert report.n_dropped_nonfinite == loaded.n_dropped_nonfinite == 3
    assert report.usable_rows == len(loaded)
    assert report.n_zeroed_negative == loaded.n_zeroed_negative == 4  # initial and final
    assert report.max_conservation_error == loaded.max_conservation_error
    labels = np.arange(40) % 2
    stable = write_stable(tmp_path / "s.h5", random_f4(40, seed=5), labels)
    report = check_file(stable, chunk_rows=chunk_rows)
    assert report.kind == "stable" and report.rows == 40 and report.max_conservation_error is None


def test_problems_in_several_chunks_are_counted_together(tmp_path: Path) -> None:
    """Two bad rows in different chunks: '2 row(s)', the first row named, the worst error."""
    F4 = random_f4(30, seed=2)
    final = F4.copy()
    final[5, 3, 0, 0] *= 1.2
    final[25, 3, 0, 0] *= 1.9
    path = write_asymptotic(tmp_path / "a.h5", F4, final, np.ones(30))
    with pytest.raises(DataError) as read:
        load_asymptotic(path)
    with pytest.raises(DataError) as checked:
        check_file(path, chunk_rows=8)
    assert checked.value.message == read.value.message
    assert "2 row(s) do not conserve" in checked.value.message
    assert "at row 25" in checked.value.message  # the worst row, found in the last chunk
    labels = np.ones(30)
    labels[[3, 17, 29]] = 0.5
    path = write_stable(tmp_path / "s.h5", F4, labels)
    with pytest.raises(DataError, match=r"3 value\(s\) do not \(first: 0.5, row 3\)"):
        check_file(path, chunk_rows=8)


def test_wrong_kind_is_refused_before_any_row_is_read(tmp_path: Path) -> None:
    stable = write_stable(tmp_path / "s.h5", random_f4(5, seed=1), np.ones(5))
    with pytest.raises(DataError, match="it is a stable file"):
        check_file(stable, "asymptotic")
    F4 = random_f4(5, seed=1)
    asymptotic = write_asymptotic(tmp_path / "a.h5", F4, F4, np.ones(5))
    with pytest.raises(DataError, match="'stable' is missing.*asymptotic file"):
        check_file(asymptotic, "stable")

"""HDF5 readers and writers: round trips, the reading rules and every malformed-input case."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from bad_data_files import CASES
from conftest import nsm1_f4, random_f4

from rhea_engine.data import (
    F4_FINAL,
    F4_INITIAL,
    GROWTH_RATE,
    NF,
    STABLE,
    detect_kind,
    load_asymptotic,
    load_stable,
    write_asymptotic,
    write_stable,
)
from rhea_engine.errors import DataError
from rhea_engine.physics import box3d


def _unstable_set(n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    F4 = np.concatenate([nsm1_f4(), random_f4(n, seed=3, heavies_identical=True)])
    out = box3d(F4)
    rows = out.unstable
    return F4[rows], out.F4_final[rows], out.growth_rate[rows]


def test_asymptotic_round_trip(tmp_path: Path) -> None:
    F4i, F4f, rate = _unstable_set()
    path = write_asymptotic(tmp_path / "sub" / "a.h5", F4i, F4f, rate)
    with h5py.File(path) as h5:
        assert h5[F4_INITIAL].dtype == np.float64 and h5[F4_FINAL].shape == F4i.shape
        assert h5[GROWTH_RATE].dtype == np.float64 and int(h5[NF][()]) == 3
    data = load_asymptotic(path)
    assert np.array_equal(data.F4_initial, F4i) and np.array_equal(data.F4_final, F4f)
    assert np.array_equal(data.growth_rate, rate)
    assert data.nf == 3 and data.path == path and data.n_dropped_nonfinite == 0
    assert data.max_conservation_error < 1e-12
    assert detect_kind(path) == "asymptotic"
    assert not list(path.parent.glob(".*tmp"))


def test_stable_round_trip(tmp_path: Path) -> None:
    F4 = random_f4(50, seed=4)
    labels = np.arange(50) % 2
    path = write_stable(tmp_path / "s.h5", F4, labels)
    data = load_stable(path)
    assert data.stable.dtype == np.float64 and np.array_equal(data.stable, labels)
    assert np.array_equal(data.F4_initial, F4) and detect_kind(path) == "stable"
    with h5py.File(path) as h5:
        assert h5[STABLE].dtype == np.float64


def test_nonfinite_rows_dropped_and_counted(tmp_path: Path) -> None:
    F4i, F4f, rate = _unstable_set()
    F4i[3, 0, 0, 0] = np.nan
    F4f[5, 3, 1, 2] = np.inf
    rate[7] = np.nan
    data = load_asymptotic(write_asymptotic(tmp_path / "a.h5", F4i, F4f, rate))
    assert data.n_dropped_nonfinite == 3 and len(data) == len(rate) - 3
    assert np.isfinite(data.F4_initial).all() and np.isfinite(data.growth_rate).all()
    labels = np.ones(len(F4i))
    labels[0] = np.nan
    stable = load_stable(write_stable(tmp_path / "s.h5", F4i, labels))
    assert stable.n_dropped_nonfinite == 2 and len(stable) == len(labels) - 2


def test_slightly_negative_density_zeroed_with_flux(tmp_path: Path) -> None:
    F4 = random_f4(10, seed=5)
    total = F4[:, 3].sum(axis=(1, 2))
    F4[2, 3, 1, 1] = -1e-6 * total[2]
    F4[2, :3, 1, 1] = 1e-7 * total[2]
    data = load_stable(write_stable(tmp_path / "s.h5", F4, np.ones(10)))
    assert np.all(data.F4_initial[2, :, 1, 1] == 0.0) and data.n_zeroed_negative == 1
    assert np.array_equal(data.F4_initial[3], F4[3])
    F4[2, 3, 1, 1] = -0.1 * total[2]
    with pytest.raises(DataError, match="below -0.001 of ntot"):
        load_stable(write_stable(tmp_path / "s2.h5", F4, np.ones(10)))


def test_flux_factor_rounding_tolerated(tmp_path: Path) -> None:
    F4 = random_f4(4, seed=6)
    F4[1, :3, 0, 0] = 0.0
    F4[1, 2, 0, 0] = F4[1, 3, 0, 0] * (1 + 1e-8)
    data = load_stable(write_stable(tmp_path / "s.h5", F4, np.ones(4)))
    assert len(data) == 4


def test_extra_datasets_ignored_and_nf_optional(tmp_path: Path) -> None:
    F4i, F4f, rate = _unstable_set(50)
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5[F4_INITIAL] = F4i.astype(np.float32)
        h5[F4_FINAL] = F4f.astype(np.float32)
        h5[GROWTH_RATE] = rate.astype(np.float32)
        h5["notes"] = np.arange(3)
    data = load_asymptotic(tmp_path / "a.h5")
    assert data.nf == 3 and data.F4_initial.dtype == np.float64
    assert 0 < data.max_conservation_error < 1e-6  # float32 storage costs ~5e-8 of ntot


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_files_raise_clear_errors(tmp_path: Path, case: str) -> None:
    writer, phrase = CASES[case]
    path = writer(tmp_path)
    loader = load_stable if case == "bad_labels" else load_asymptotic
    with pytest.raises(DataError) as info:
        loader(path)
    message = info.value.message
    assert phrase in message, message
    assert str(path) in message and "\n" not in message


@pytest.mark.parametrize(
    "case", ["not_hdf5", "empty_file", "empty_hdf5", "does_not_exist", "directory"]
)
def test_detect_kind_and_stable_loader_on_bad_files(tmp_path: Path, case: str) -> None:
    writer, phrase = CASES[case]
    path = writer(tmp_path)
    for fn in (detect_kind, load_stable):
        with pytest.raises(DataError, match="Cannot read the data file"):
            fn(path)


def test_loading_wrong_kind(tmp_path: Path) -> None:
    path = write_stable(tmp_path / "s.h5", random_f4(5, seed=1), np.ones(5))
    with pytest.raises(DataError, match="it is a stable file"):
        load_asymptotic(path)
    F4i, F4f, rate = _unstable_set(20)
    path = write_asymptotic(tmp_path / "a.h5", F4i, F4f, rate)
    with pytest.raises(DataError, match="'stable' is missing.*asymptotic file"):
        load_stable(path)


def test_writers_check_shapes(tmp_path: Path) -> None:
    F4 = random_f4(5, seed=1)
    with pytest.raises(DataError):
        write_asymptotic(tmp_path / "a.h5", F4, F4[:4], np.ones(5))
    with pytest.raises(DataError):
        write_stable(tmp_path / "s.h5", F4, np.ones(4))
    with pytest.raises(DataError):
        write_stable(tmp_path / "s.h5", F4[:, :3], np.ones(5))
    with pytest.raises(DataError, match="is a directory"):
        write_stable(tmp_path, F4, np.ones(5))

"""Subsampling, train/test splits and heavy-flavor permutation augmentation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_f4

from rhea_engine.data import (
    AsymptoticSet,
    StableSet,
    augment_permutation,
    heavy_permutations,
    permute_flavors,
    subsample,
    train_test_split_set,
)
from rhea_engine.errors import DataError
from rhea_engine.physics import box3d


def _stable_set(n: int = 100) -> StableSet:
    return StableSet(F4_initial=random_f4(n, seed=1), stable=(np.arange(n) % 2).astype(float), nf=3)


def _asymptotic_set(n: int = 100) -> AsymptoticSet:
    F4 = random_f4(n, seed=2)
    out = box3d(F4)
    rows = out.unstable
    return AsymptoticSet(
        F4_initial=F4[rows], F4_final=out.F4_final[rows], growth_rate=out.growth_rate[rows], nf=3
    )


def test_split_is_seeded_and_partitions() -> None:
    data = _stable_set()
    train, test = train_test_split_set(data, test_size=0.25, seed=3)
    assert len(train) == 75 and len(test) == 25
    rows = np.concatenate([train.F4_initial, test.F4_initial])
    assert np.unique(rows.reshape(100, -1), axis=0).shape[0] == 100
    again, _ = train_test_split_set(data, test_size=0.25, seed=3)
    other, _ = train_test_split_set(data, test_size=0.25, seed=4)
    assert np.array_equal(again.F4_initial, train.F4_initial)
    assert not np.array_equal(other.F4_initial, train.F4_initial)
    with pytest.raises(DataError):
        train_test_split_set(data, test_size=1.5, seed=0)
    with pytest.raises(DataError):
        train_test_split_set(data.subset(slice(0, 1)), test_size=0.5, seed=0)


def test_split_keeps_fields_together() -> None:
    data = _asymptotic_set()
    train, test = train_test_split_set(data, test_size=0.5, seed=0)
    for part in (train, test):
        for i in range(len(part)):
            j = np.flatnonzero(np.all(data.F4_initial == part.F4_initial[i], axis=(1, 2, 3)))[0]
            assert np.array_equal(part.F4_final[i], data.F4_final[j])
            assert part.growth_rate[i] == data.growth_rate[j]


def test_subsample() -> None:
    data = _stable_set()
    assert len(subsample(data, -1, -1)) == 100
    first = subsample(data, samples_per_database=10)
    assert np.array_equal(first.F4_initial, data.F4_initial[:10])
    rand = subsample(data, random_samples_per_database=20, seed=1)
    assert len(rand) == 20 and not np.array_equal(rand.F4_initial, data.F4_initial[:20])
    assert np.array_equal(
        rand.F4_initial, subsample(data, random_samples_per_database=20, seed=1).F4_initial
    )
    both = subsample(data, samples_per_database=30, random_samples_per_database=5, seed=0)
    assert len(both) == 5 and all(
        np.any(np.all(data.F4_initial[:30] == r, axis=(1, 2, 3))) for r in both.F4_initial
    )
    assert len(subsample(data, samples_per_database=1000)) == 100
    with pytest.raises(DataError):
        subsample(data, samples_per_database=-2)


def test_permutation_augmentation_keeps_electron_flavor() -> None:
    assert heavy_permutations(3) == [(0, 2, 1)]
    data = _asymptotic_set()
    augmented = augment_permutation(data)
    n = len(data)
    assert len(augmented) == 2 * n  # every row has mu != tau here
    assert np.array_equal(augmented.F4_initial[n:], permute_flavors(data.F4_initial, (0, 2, 1)))
    assert np.array_equal(augmented.F4_final[n:, ..., 0], data.F4_final[..., 0])
    # Box3D commutes with mu <-> tau, so augmented rows are valid Box3D data.
    mixed = box3d(augmented.F4_initial[n:])
    assert np.allclose(
        mixed.F4_final, augmented.F4_final[n:], rtol=0, atol=1e-12 * data.F4_initial[:, 3].sum()
    )
    stable = StableSet(
        F4_initial=random_f4(10, seed=9, heavies_identical=True), stable=np.ones(10), nf=3
    )
    assert len(augment_permutation(stable)) == 10  # mu = tau rows are not duplicated
    with pytest.raises(DataError):
        permute_flavors(data.F4_initial, (0, 0, 1))

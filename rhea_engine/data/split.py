"""Subsampling, train/test splits and flavor-permutation augmentation of loaded data sets."""

from __future__ import annotations

from itertools import permutations
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from rhea_engine.data.schema import AsymptoticSet, FloatArray, StableSet
from rhea_engine.errors import DataError

DataSet = TypeVar("DataSet", AsymptoticSet, StableSet)


def subsample(
    data: DataSet,
    samples_per_database: int = -1,
    random_samples_per_database: int = -1,
    seed: int = 0,
) -> DataSet:
    """Keep the first `samples_per_database` rows, then `random_samples_per_database` random ones.

    -1 means all rows for either; a request larger than the set keeps the whole set.
    """
    for name, value in (
        ("samples_per_database", samples_per_database),
        ("random_samples_per_database", random_samples_per_database),
    ):
        if value < -1:
            raise DataError(f"{name} must be -1 (all rows) or a non-negative count, got {value}.")
    out = data
    if samples_per_database >= 0 and samples_per_database < len(out):
        out = out.subset(slice(0, samples_per_database))
    if random_samples_per_database >= 0 and random_samples_per_database < len(out):
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(out), size=random_samples_per_database, replace=False))
        out = out.subset(rows)
    return out


def train_test_split_set(
    data: DataSet, test_size: float = 0.1, seed: int = 0
) -> tuple[DataSet, DataSet]:
    """Split a data set into (train, test) rows with scikit-learn's train_test_split, seeded."""
    from sklearn.model_selection import train_test_split

    n = len(data)
    if not (0.0 < test_size < 1.0 or (float(test_size).is_integer() and 1 <= test_size < n)):
        raise DataError(
            f"test_size must be a fraction in (0, 1) or a row count below {n}, got {test_size}."
        )
    if n < 2:
        raise DataError(f"Cannot split a data set of {n} row(s) into train and test parts.")
    size: float | int = int(test_size) if test_size >= 1 else float(test_size)
    try:
        train_rows, test_rows = train_test_split(
            np.arange(n), test_size=size, random_state=seed, shuffle=True
        )
    except ValueError as exc:
        raise DataError(f"Cannot split {n} rows with test_size={test_size}: {exc}") from None
    return data.subset(np.sort(train_rows)), data.subset(np.sort(test_rows))


def permute_flavors(
    F4: FloatArray, order: tuple[int, ...] | list[int] | NDArray[np.integer]
) -> FloatArray:
    """F4 with its flavor axis (last) reordered: result[..., i] = F4[..., order[i]]."""
    order = np.asarray(order)
    if sorted(order.tolist()) != list(range(F4.shape[-1])):
        raise DataError(f"{order.tolist()} is not a permutation of the {F4.shape[-1]} flavors.")
    return np.ascontiguousarray(F4[..., order])


def heavy_permutations(nf: int) -> list[tuple[int, ...]]:
    """Flavor orders that keep the electron flavor first and permute the heavy ones (identity excluded)."""
    return [(0, *rest) for rest in permutations(range(1, nf)) if list(rest) != list(range(1, nf))]


def augment_permutation(data: DataSet) -> DataSet:
    """Append copies with the heavy flavors permuted (mu <-> tau for NF = 3).

    The electron flavor keeps its role: Box3D and the physics of the data are not symmetric
    under e <-> mu. Rows whose heavy flavors are already identical would only be duplicated,
    so only the others are copied.
    """
    nf = data.nf
    extra_rows = []
    for order in heavy_permutations(nf):
        changed = np.any(data.F4_initial[..., list(order)] != data.F4_initial, axis=(1, 2, 3))
        if isinstance(data, AsymptoticSet):
            changed |= np.any(data.F4_final[..., list(order)] != data.F4_final, axis=(1, 2, 3))
        extra_rows.append((order, np.flatnonzero(changed)))
    if not any(rows.size for _, rows in extra_rows):
        return data
    if isinstance(data, AsymptoticSet):
        initial = [data.F4_initial] + [
            permute_flavors(data.F4_initial[r], o) for o, r in extra_rows
        ]
        final = [data.F4_final] + [permute_flavors(data.F4_final[r], o) for o, r in extra_rows]
        rates = [data.growth_rate] + [data.growth_rate[r] for _, r in extra_rows]
        return AsymptoticSet(
            F4_initial=np.concatenate(initial),
            F4_final=np.concatenate(final),
            growth_rate=np.concatenate(rates),
            nf=nf,
            path=data.path,
            n_dropped_nonfinite=data.n_dropped_nonfinite,
            max_conservation_error=data.max_conservation_error,
        )
    initial = [data.F4_initial] + [permute_flavors(data.F4_initial[r], o) for o, r in extra_rows]
    labels = [data.stable] + [data.stable[r] for _, r in extra_rows]
    return StableSet(  # type: ignore[return-value]
        F4_initial=np.concatenate(initial),
        stable=np.concatenate(labels),
        nf=nf,
        path=data.path,
        n_dropped_nonfinite=data.n_dropped_nonfinite,
    )

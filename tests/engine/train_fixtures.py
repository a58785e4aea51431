"""Small physical data sets for the engine tests: merger-like four-fluxes, Box3D labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rhea_engine.config import TrainConfig
from rhea_engine.train_data import TrainingData, data_from_arrays


def random_F4(n: int, seed: int, NF: int = 3) -> np.ndarray:
    """Merger-like initial states: heavies identical, nubar_e/nu_e in [0.8, 2], f <= 0.9."""
    rng = np.random.default_rng(seed)
    F4 = np.zeros((n, 4, 2, NF))
    ntot = 10 ** rng.uniform(30, 35, n)
    n_nue = rng.uniform(0.5, 1.5, n)
    n_nubar = n_nue * rng.uniform(0.8, 2.0, n)
    n_heavy = rng.uniform(0.1, 1.0, n)
    for s, density in ((0, n_nue), (1, n_nubar)):
        F4[:, 3, s, 0] = density
        F4[:, 3, s, 1:] = n_heavy[:, None]
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    for s in range(2):
        for a in range(NF):
            jitter = rng.normal(scale=0.5, size=(n, 3))
            direction = axis + jitter
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            f = 0.9 * rng.uniform(0, 1, n) ** 2
            F4[:, :3, s, a] = direction * (f * F4[:, 3, s, a])[:, None]
    F4[:, :, :, 2] = F4[:, :, :, 1]  # mu = tau
    F4 *= (ntot / F4[:, 3].sum(axis=(1, 2)))[:, None, None, None]
    return F4


def physical_sets(
    n: int, seed: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]:
    """(asymptotic (F4_initial, F4_final, growthrate) of the unstable rows, stable (F4, label))."""
    from rhea_engine.physics import box3d

    F4 = random_F4(n, seed)
    box = box3d(F4)
    unstable = box.unstable
    asym = (F4[unstable], box.F4_final[unstable], box.growth_rate[unstable])
    return asym, (F4, (~unstable).astype(np.float64))


def tiny_config(**changes: object) -> TrainConfig:
    base = dict(
        epochs=3,
        epoch_num_samples=2048,
        batch_size=256,
        width_shared=16,
        width_stability=8,
        width_growthrate=8,
        width_density=16,
        width_flux=16,
        warmup_iters=0,
        learning_rate=3e-3,
        output_every=1,
        device="cpu",
        test_size=0.2,
        random_seed=3,
    )
    base.update(changes)  # type: ignore[arg-type]
    return TrainConfig(**base)  # type: ignore[arg-type]


def tiny_data(config: TrainConfig, n: int = 3000, seed: int = 11) -> TrainingData:
    asym, stab = physical_sets(n, seed)
    half = stab[0].shape[0] // 2
    stab_files = [(stab[0][:half], stab[1][:half]), (stab[0][half:], stab[1][half:])]
    return data_from_arrays(config, [asym], stab_files)


def write_h5_sets(directory: Path, n: int = 2000, seed: int = 5) -> tuple[Path, Path]:
    """Write asymptotic.h5 and stable.h5 in the documented HDF5 layout."""
    import h5py

    asym, stab = physical_sets(n, seed)
    directory.mkdir(parents=True, exist_ok=True)
    a_path, s_path = directory / "asymptotic.h5", directory / "stable.h5"
    with h5py.File(a_path, "w") as h5:
        h5["F4_initial(1|ccm)"] = asym[0]
        h5["F4_final(1|ccm)"] = asym[1]
        h5["growthRate(1|s)"] = asym[2]
        h5["nf"] = 3
    with h5py.File(s_path, "w") as h5:
        h5["F4_initial(1|ccm)"] = stab[0]
        h5["stable"] = stab[1]
        h5["nf"] = 3
    return a_path, s_path

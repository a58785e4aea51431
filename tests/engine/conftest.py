"""Fixtures for the physics and data tests: the NSM1 case and small synthetic samples."""

from __future__ import annotations

import numpy as np
import pytest

from rhea_engine.data.synth import SynthSamples, generate

#: NSM1 (Richers et al. 2022): densities in cm^-3 and flux/N ratios of nu_e, nubar_e, each heavy.
NSM1_DENSITY = (14.22e32, 19.15e32, 19.65e32 / 4)
NSM1_FLUX_RATIO = ((0.0974, 0.0421, -0.1343), (0.0723, 0.0313, -0.3446), (-0.0216, 0.0743, -0.5354))


def nsm1_f4() -> np.ndarray:
    """The NSM1 initial four-flux, shape [1, 4, 2, 3]."""
    F4 = np.zeros((1, 4, 2, 3))
    species = [((0, 0), 0), ((1, 0), 1)] + [((s, a), 2) for s in (0, 1) for a in (1, 2)]
    for (s, a), k in species:
        F4[0, 3, s, a] = NSM1_DENSITY[k]
        F4[0, :3, s, a] = np.array(NSM1_FLUX_RATIO[k]) * NSM1_DENSITY[k]
    return F4


def random_f4(n: int, seed: int, heavies_identical: bool = False, max_f: float = 0.9) -> np.ndarray:
    """Random physical four-fluxes [n, 4, 2, 3] (every species drawn independently unless told)."""
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.05, 1.0, (n, 2, 3)) * 10.0 ** rng.uniform(30, 35, (n, 1, 1))
    direction = rng.normal(size=(n, 3, 2, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    f = rng.uniform(0.0, max_f, (n, 2, 3))
    F4 = np.concatenate([direction * (f * density)[:, None], density[:, None]], axis=1)
    if heavies_identical:
        F4[:, :, :, 1:] = F4[:, :, 0:1, 1:2]
    return F4


@pytest.fixture
def nsm1() -> np.ndarray:
    return nsm1_f4()


@pytest.fixture(scope="session")
def synth_small() -> SynthSamples:
    """A few thousand generated samples (one block), shared by the generator tests."""
    return generate(4096, seed=11)

"""HDF5 schema of the asymptotic and stable data sets: names, containers and validation rules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

F4_INITIAL = "F4_initial(1|ccm)"
F4_FINAL = "F4_final(1|ccm)"
GROWTH_RATE = "growthRate(1|s)"
STABLE = "stable"
NF = "nf"

#: Flavor-summed four-flux of asymptotic rows must be conserved to this fraction of ntot.
CONSERVATION_TOLERANCE = 1e-3
#: Negative densities down to this fraction of ntot are rounding: set to zero with their flux.
NEGATIVE_DENSITY_TOLERANCE = 1e-3
#: A non-zero flux below this fraction of ntot is lost by float32 code that normalizes by ntot:
#: its square is below float32's smallest normal number (flushed to zero on GPUs; zero or
#: denormal on CPUs), so |F| comes out 0 and F/|F| is not finite. sqrt(1.1755e-38) = 1.0842e-19.
FLOAT32_FLUX_FLOOR = float(np.sqrt(np.finfo(np.float32).tiny))


def rows_with_unresolved_flux(F4: NDArray[np.float64]) -> int:
    """Rows where some species has a flux 0 < |F| < FLOAT32_FLUX_FLOOR * ntot."""
    if F4.shape[0] == 0:
        return 0
    total = F4[:, 3].sum(axis=(1, 2))
    fmag = np.sqrt((F4[:, :3] ** 2).sum(axis=1))
    tiny = (fmag > 0) & (fmag < FLOAT32_FLUX_FLOOR * np.abs(total)[:, None, None])
    return int(tiny.any(axis=(1, 2)).sum())


@dataclass(frozen=True)
class AsymptoticSet:
    """Rows of an asymptotic file: initial and final four-flux [N,4,2,NF], growth rate [N] (1/s)."""

    F4_initial: FloatArray = field(repr=False)
    F4_final: FloatArray = field(repr=False)
    growth_rate: FloatArray = field(repr=False)
    nf: int
    path: Path | None = None
    n_dropped_nonfinite: int = 0
    max_conservation_error: float = 0.0
    n_zeroed_negative: int = field(default=0, compare=False)

    def __len__(self) -> int:
        return int(self.F4_initial.shape[0])

    def subset(self, index: NDArray[np.integer] | slice) -> AsymptoticSet:
        """The rows selected by `index`, with the same provenance fields."""
        return replace(
            self,
            F4_initial=self.F4_initial[index],
            F4_final=self.F4_final[index],
            growth_rate=self.growth_rate[index],
        )


@dataclass(frozen=True)
class StableSet:
    """Rows of a stable file: initial four-flux [N,4,2,NF] and label [N] (1.0 = stable, 0.0 = not)."""

    F4_initial: FloatArray = field(repr=False)
    stable: FloatArray = field(repr=False)
    nf: int
    path: Path | None = None
    n_dropped_nonfinite: int = 0
    n_zeroed_negative: int = field(default=0, compare=False)

    def __len__(self) -> int:
        return int(self.F4_initial.shape[0])

    def subset(self, index: NDArray[np.integer] | slice) -> StableSet:
        """The rows selected by `index`, with the same provenance fields."""
        return replace(self, F4_initial=self.F4_initial[index], stable=self.stable[index])

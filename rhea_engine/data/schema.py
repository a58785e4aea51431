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

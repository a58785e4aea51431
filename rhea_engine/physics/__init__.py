"""Physics core: units, four-flux algebra, closure, quadrature, crossing test, Box3D."""

from rhea_engine.physics.box import Box3DResult, MixingGrid, box3d, growth_rate, mixing_grid
from rhea_engine.physics.closure import (
    inverse_langevin,
    inverse_langevin_jedynak,
    langevin,
    maxent_distribution,
)
from rhea_engine.physics.crossing import CROSSING_EPSILON, crossing_test
from rhea_engine.physics.fourflux import (
    NDENS,
    NU,
    NUBAR,
    as_f4,
    average_heavies,
    conservation_error,
    eln,
    eln_error,
    eln_four_flux,
    eln_violation,
    flavor_sum,
    flux_factor,
    flux_magnitude,
    heavies_equal,
    minkowski,
    ntot,
    total_four_flux,
    unphysical_excess,
)
from rhea_engine.physics.quadrature import (
    MIXING_ORDER,
    NEGATIVE_WEIGHT_ORDERS,
    STABILITY_ORDER,
    lebedev,
)
from rhea_engine.physics.units import (
    NDENS_TO_INVSEC,
    NDENS_TO_INVSEC_LEGACY_NO_SQRT2,
)

__all__ = [
    "CROSSING_EPSILON",
    "MIXING_ORDER",
    "NDENS",
    "NDENS_TO_INVSEC",
    "NDENS_TO_INVSEC_LEGACY_NO_SQRT2",
    "NEGATIVE_WEIGHT_ORDERS",
    "NU",
    "NUBAR",
    "STABILITY_ORDER",
    "Box3DResult",
    "MixingGrid",
    "as_f4",
    "average_heavies",
    "box3d",
    "conservation_error",
    "crossing_test",
    "eln",
    "eln_error",
    "eln_four_flux",
    "eln_violation",
    "flavor_sum",
    "flux_factor",
    "flux_magnitude",
    "growth_rate",
    "heavies_equal",
    "inverse_langevin",
    "inverse_langevin_jedynak",
    "langevin",
    "lebedev",
    "maxent_distribution",
    "minkowski",
    "mixing_grid",
    "ntot",
    "total_four_flux",
    "unphysical_excess",
]

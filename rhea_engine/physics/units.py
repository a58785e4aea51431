"""Named unit constants (CGS) for the growth rate; see docs/physics.md §1."""

from __future__ import annotations

import math

HBAR_ERG_S = 1.05457266e-27  # erg s
C_CM_S = 2.99792458e10  # cm / s
EV_ERG = 1.60218e-12  # erg
G_FERMI_GEV2 = 1.1663787e-5  # GeV^-2
HBARC_ERG_CM = HBAR_ERG_S * C_CM_S
G_FERMI_ERG2 = G_FERMI_GEV2 / (1e9 * EV_ERG) ** 2  # erg^-2

#: sqrt(2) G_F (hbar c)^3 / hbar, in cm^3/s: sigma [1/s] = NDENS_TO_INVSEC * n [cm^-3].
NDENS_TO_INVSEC = math.sqrt(2.0) * G_FERMI_ERG2 * HBARC_ERG_CM**3 / HBAR_ERG_S

#: The constant of an older upstream branch (missing the sqrt 2). Named so that models
#: trained with it can be recognised; never used silently.
NDENS_TO_INVSEC_LEGACY_NO_SQRT2 = 1.3615452913035457e-22

"""Four-flux algebra on F4[N, 4, 2, NF]: totals, Minkowski products, flux factors, ELN."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rhea_engine.errors import PhysicsError

FloatArray = NDArray[np.float64]

#: Index of the number density on axis 1 of F4 (F_x, F_y, F_z, N).
NDENS = 3
#: Axis-2 indices of neutrinos and antineutrinos.
NU, NUBAR = 0, 1
#: Relative slack allowed on |F| <= N before a state counts as unphysical (float32 rounding).
FLUX_FACTOR_ROUNDING = 1e-6
#: Absolute slack on |F| <= N, as a fraction of ntot.
FLUX_ABS_SLACK = 1e-9


def as_f4(F4: ArrayLike, name: str = "F4") -> FloatArray:
    """Return F4 as a float64 array of shape [N, 4, 2, NF], or raise PhysicsError."""
    arr = np.asarray(F4, dtype=np.float64)
    if arr.ndim != 4 or arr.shape[1] != 4 or arr.shape[2] != 2 or arr.shape[3] < 1:
        raise PhysicsError(
            f"{name} must have shape [N, 4, 2, NF] (components F_x, F_y, F_z, N; neutrino and "
            f"antineutrino; flavors), but it has shape {list(arr.shape)}."
        )
    return arr


def ntot(F4: ArrayLike) -> FloatArray:
    """Total number density per sample: sum of N over nu/nubar and flavors, shape [N]."""
    arr = np.asarray(F4, dtype=np.float64)
    return arr[:, NDENS].sum(axis=(1, 2))


def minkowski(a: ArrayLike, b: ArrayLike, axis: int = 1) -> FloatArray:
    """Minkowski product a.b = a_vec.b_vec - a_t b_t, with the (x, y, z, t) components on `axis`."""
    a_arr = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    b_arr = np.moveaxis(np.asarray(b, dtype=np.float64), axis, -1)
    spatial = np.einsum("...i,...i->...", a_arr[..., :3], b_arr[..., :3])
    return spatial - a_arr[..., 3] * b_arr[..., 3]


def flux_magnitude(F4: ArrayLike) -> FloatArray:
    """|F_vec| per species, shape [N, 2, NF]."""
    arr = np.asarray(F4, dtype=np.float64)
    return np.sqrt(arr[:, 0] ** 2 + arr[:, 1] ** 2 + arr[:, 2] ** 2)


def flux_factor(F4: ArrayLike) -> FloatArray:
    """Flux factor f = |F|/N per species, shape [N, 2, NF]; 0 where N <= 0."""
    arr = np.asarray(F4, dtype=np.float64)
    fmag = flux_magnitude(arr)
    n = arr[:, NDENS]
    out = np.zeros_like(n)
    np.divide(fmag, n, out=out, where=n > 0)
    return out


def flavor_sum(F4: ArrayLike) -> FloatArray:
    """Four-flux summed over flavors, nu and nubar kept apart: shape [N, 4, 2]."""
    return np.asarray(F4, dtype=np.float64).sum(axis=3)


def total_four_flux(F4: ArrayLike) -> FloatArray:
    """Four-flux summed over nu/nubar and flavors: shape [N, 4]."""
    return np.asarray(F4, dtype=np.float64).sum(axis=(2, 3))


def eln(F4: ArrayLike) -> FloatArray:
    """Lepton number per flavor, N_nu - N_nubar: shape [N, NF]."""
    arr = np.asarray(F4, dtype=np.float64)
    return arr[:, NDENS, NU] - arr[:, NDENS, NUBAR]


def eln_four_flux(F4: ArrayLike) -> FloatArray:
    """Lepton-number four-flux per flavor, F4_nu - F4_nubar: shape [N, 4, NF]."""
    arr = np.asarray(F4, dtype=np.float64)
    return arr[:, :, NU] - arr[:, :, NUBAR]


def _safe_ntot(F4: FloatArray) -> FloatArray:
    total = ntot(F4)
    return np.where(total > 0, total, 1.0)


def conservation_error(F4_initial: ArrayLike, F4_final: ArrayLike) -> FloatArray:
    """Largest change of the flavor-summed four-flux (nu and nubar apart) per sample, / ntot."""
    initial = np.asarray(F4_initial, dtype=np.float64)
    final = np.asarray(F4_final, dtype=np.float64)
    if initial.shape[0] == 0:
        return np.zeros(0)
    diff = np.abs(flavor_sum(final) - flavor_sum(initial)).max(axis=(1, 2))
    return diff / _safe_ntot(initial)


def eln_error(F4_initial: ArrayLike, F4_final: ArrayLike) -> FloatArray:
    """Largest change of any flavor's N_nu - N_nubar per sample, / ntot; shape [N]."""
    initial = np.asarray(F4_initial, dtype=np.float64)
    final = np.asarray(F4_final, dtype=np.float64)
    if initial.shape[0] == 0:
        return np.zeros(0)
    return np.abs(eln(final) - eln(initial)).max(axis=1) / _safe_ntot(initial)


def eln_violation(F4_initial: ArrayLike, F4_final: ArrayLike) -> float:
    """Max over samples and flavors of |dELN| / ntot (docs/physics.md §3); 0 for no samples."""
    err = eln_error(F4_initial, F4_final)
    return float(err.max()) if err.size else 0.0


def unphysical_excess(F4: ArrayLike) -> FloatArray:
    """Per sample, max over species of max(-N, |F| - N, 0) / ntot; shape [N]."""
    arr = np.asarray(F4, dtype=np.float64)
    if arr.shape[0] == 0:
        return np.zeros(0)
    n = arr[:, NDENS]
    excess = np.maximum(np.maximum(-n, flux_magnitude(arr) - n), 0.0).max(axis=(1, 2))
    return excess / _safe_ntot(arr)


def heavies_equal(F4: ArrayLike) -> NDArray[np.bool_]:
    """True where all heavy flavors (index >= 1) carry the same four-flux, per sample and species."""
    arr = np.asarray(F4, dtype=np.float64)
    if arr.shape[3] <= 2:
        return np.ones(arr.shape[0], dtype=bool)
    return np.all(arr[..., 1:2] == arr[..., 2:], axis=(1, 2, 3))


def average_heavies(F4: ArrayLike) -> FloatArray:
    """Copy of F4 with every heavy flavor (index >= 1) replaced by the heavy-flavor mean."""
    arr = np.array(F4, dtype=np.float64, copy=True)
    if arr.shape[3] > 2:
        arr[..., 1:] = arr[..., 1:].mean(axis=3, keepdims=True)
    return arr

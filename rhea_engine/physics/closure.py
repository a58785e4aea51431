"""Maximum-entropy closure: exact and approximate inverse Langevin, angular distributions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rhea_engine.errors import PhysicsError
from rhea_engine.physics.fourflux import FLUX_ABS_SLACK, FLUX_FACTOR_ROUNDING

FloatArray = NDArray[np.float64]

#: |L(Z) - f| reached by the exact inverse (docs/physics.md §4).
LANGEVIN_TOLERANCE = 1e-13
#: Below this flux factor Z = 3f (the first term of the series) is exact to rounding.
SMALL_FLUX_FACTOR = 1e-6
#: Below this Z the distribution is evaluated as (N/4pi)(1 + Z mu).
SMALL_Z = 1e-4
#: Flux factors are capped here so that Z stays finite (Z <= 1e12) for beams with f = 1.
MAX_FLUX_FACTOR = 1.0 - 1e-12
#: Flux below this fraction of ntot counts as zero: the distribution is isotropic.
ZERO_FLUX = 1e-12
_SERIES_Z = 0.05
_FOUR_PI = 4.0 * math.pi


def langevin(z: ArrayLike) -> FloatArray:
    """L(Z) = coth Z - 1/Z, accurate to rounding for all Z >= 0 (series near 0)."""
    z = np.asarray(z, dtype=np.float64)
    z2 = z * z
    series = z * (1 / 3 + z2 * (-1 / 45 + z2 * (2 / 945 + z2 * (-1 / 4725 + z2 * 2 / 93555))))
    safe = np.where(z < _SERIES_Z, 1.0, z)
    direct = _coth(safe) - 1.0 / safe
    return np.where(z < _SERIES_Z, series, direct)


def _coth(z: FloatArray) -> FloatArray:
    """coth Z = 2 / (1 - e^{-2Z}) - 1 for Z > 0 (expm1 keeps it accurate; faster than tanh)."""
    return 2.0 / -np.expm1(-2.0 * z) - 1.0


def _langevin_and_slope(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """L(Z) and L'(Z) = 1 - coth^2 Z + 1/Z^2 for Z > 0 (series below Z = 0.05)."""
    coth = _coth(z)
    inv = 1.0 / z
    value = coth - inv
    slope = (1.0 - coth * coth) + inv * inv
    small = np.flatnonzero(z < _SERIES_Z)
    if small.size:
        zs = z[small]
        z2 = zs * zs
        value[small] = zs * (
            1 / 3 + z2 * (-1 / 45 + z2 * (2 / 945 + z2 * (-1 / 4725 + z2 * 2 / 93555)))
        )
        slope[small] = 1 / 3 + z2 * (-1 / 15 + z2 * (2 / 189 - z2 * 7 / 4725))
    return value, slope


def _check_flux_factor(f: FloatArray) -> None:
    bad = ~np.isfinite(f) | (f < 0) | (f > 1.0 + FLUX_FACTOR_ROUNDING)
    if np.any(bad):
        worst = f[bad].flat[0]
        raise PhysicsError(
            f"A flux factor must lie in [0, 1] (|F| <= N), but {int(bad.sum())} value(s) do not, "
            f"e.g. {worst!r}. A flux factor above 1 is unphysical; check the input four-fluxes."
        )


def inverse_langevin_jedynak(f: ArrayLike) -> FloatArray:
    """Jedynak's rational approximation of L^-1(f) (max relative error ~7.7e-4 near f=0.95)."""
    f_arr = np.asarray(f, dtype=np.float64)
    _check_flux_factor(f_arr)
    x: FloatArray = np.clip(f_arr, 0.0, MAX_FLUX_FACTOR)
    x2 = x * x
    poly = 3.0 + x2 * (-1.00651 + x2 * (-0.962251 + x2 * (1.47353 - 0.48953 * x2)))
    return np.asarray(x * poly / ((1.0 - x) * (1.0 + 1.01524 * x)), dtype=np.float64)


def inverse_langevin(f: ArrayLike, max_iter: int = 100) -> FloatArray:
    """Exact Z = L^-1(f) by safeguarded Newton/bisection to |L(Z) - f| < 1e-13, vectorized."""
    f_arr = np.asarray(f, dtype=np.float64)
    _check_flux_factor(f_arr)
    shape = f_arr.shape
    f_flat = np.clip(f_arr.reshape(-1), 0.0, MAX_FLUX_FACTOR)
    z = 3.0 * f_flat
    todo = np.flatnonzero(f_flat >= SMALL_FLUX_FACTOR)
    if todo.size:
        ft = f_flat[todo]
        # L is concave and increasing with L(Z) < Z/3 and L(Z) > 1 - 1/Z: the root is bracketed.
        lo = 3.0 * ft
        hi = 1.0 / (1.0 - ft)
        zt = np.clip(inverse_langevin_jedynak(ft), lo, hi)
        for _ in range(max_iter):
            value, slope = _langevin_and_slope(zt)
            err = value - ft
            done = np.abs(err) < LANGEVIN_TOLERANCE
            if done.all():
                break
            np.copyto(lo, zt, where=err < 0)  # the root lies above
            np.copyto(hi, zt, where=err > 0)  # the root lies below
            step = zt - err / slope
            inside = (step > lo) & (step < hi)
            np.copyto(zt, np.where(inside, step, 0.5 * (lo + hi)), where=~done)
        z[todo] = zt
    return z.reshape(shape)


@dataclass(frozen=True)
class ClosureParams:
    """Per-species closure: g(Omega) = prefactor e^{Z(mu - 1)}, or (N/4pi)(1 + Z mu) if `small`."""

    n_over_4pi: FloatArray
    z: FloatArray
    unit: FloatArray
    prefactor: FloatArray
    small: NDArray[np.bool_]

    def take(self, rows: NDArray[np.integer] | slice) -> ClosureParams:
        """The parameters of the selected species."""
        return ClosureParams(
            self.n_over_4pi[rows],
            self.z[rows],
            self.unit[rows],
            self.prefactor[rows],
            self.small[rows],
        )


def closure_params(
    n: ArrayLike, flux: ArrayLike, ntot: ArrayLike | None = None, exact: bool = True
) -> ClosureParams:
    """Closure parameters of S species from densities n [S] and fluxes flux [S, 3].

    N = 0 gives g = 0; |F| <= 1e-12 ntot gives the isotropic N/4pi. `ntot` [S] (default: n)
    sets that threshold and the absolute slack of the |F| <= N check.
    """
    n_arr = np.asarray(n, dtype=np.float64).reshape(-1)
    flux_arr = np.asarray(flux, dtype=np.float64).reshape(-1, 3)
    scale = n_arr if ntot is None else np.asarray(ntot, dtype=np.float64).reshape(-1)
    fmag = np.sqrt(flux_arr[:, 0] ** 2 + flux_arr[:, 1] ** 2 + flux_arr[:, 2] ** 2)
    positive = n_arr > 0
    directional = positive & (fmag > ZERO_FLUX * np.abs(scale))
    limit = n_arr * (1 + FLUX_FACTOR_ROUNDING) + FLUX_ABS_SLACK * np.abs(scale)
    if np.any(positive & (fmag > limit)):
        _check_flux_factor(np.where(positive, fmag / np.where(positive, n_arr, 1.0), 0.0))
    f = np.zeros_like(n_arr)
    np.divide(fmag, n_arr, out=f, where=directional)
    np.minimum(f, 1.0, out=f)
    z = inverse_langevin(f) if exact else inverse_langevin_jedynak(f)
    unit = np.zeros_like(flux_arr)
    np.divide(flux_arr, fmag[:, None], out=unit, where=directional[:, None])
    n_over_4pi = np.where(positive, n_arr, 0.0) / _FOUR_PI
    small = z < SMALL_Z
    z_big = np.where(small, 1.0, z)
    # 2Z e^{Z(mu-1)} / (1 - e^{-2Z}) never overflows, whatever Z.
    prefactor = np.where(small, 0.0, n_over_4pi * 2.0 * z_big / -np.expm1(-2.0 * z_big))
    return ClosureParams(n_over_4pi, z, unit, prefactor, small)


def augmented_points(points: ArrayLike) -> FloatArray:
    """Directions with a row of ones appended, [4, m]: one matrix product gives Z mu - Z."""
    pts = np.asarray(points, dtype=np.float64)
    return np.ascontiguousarray(np.vstack([pts, np.ones(pts.shape[1])]))


def evaluate(params: ClosureParams, points_aug: FloatArray) -> FloatArray:
    """g[S, m] on the directions of points_aug[4, m] (see augmented_points)."""
    small = params.small
    weights = np.empty((small.shape[0], 4))
    weights[:, :3] = params.unit * params.z[:, None]
    # Exponent Z mu - Z, or for small Z the linear form's 1 + Z mu (then no exponential).
    weights[:, 3] = np.where(small, 1.0, -params.z)
    g = weights @ points_aug
    if small.any():
        np.exp(g, out=g, where=~small[:, None])
        g *= np.where(small, params.n_over_4pi, params.prefactor)[:, None]
    else:
        np.exp(g, out=g)
        g *= params.prefactor[:, None]
    return g


def maxent_distribution(
    n: ArrayLike,
    flux: ArrayLike,
    points: ArrayLike,
    ntot: ArrayLike | None = None,
    exact: bool = True,
) -> FloatArray:
    """Maximum-entropy angular distribution g[S, m] of S species on directions points[3, m].

    n [S] are number densities, flux [S, 3] the flux vectors; g integrates to N over the
    sphere. N = 0 gives g = 0; |F| <= 1e-12 ntot gives the isotropic N/4pi. `ntot` [S]
    (default: n) sets the zero-flux threshold and the absolute slack of the |F| <= N check.
    """
    return evaluate(closure_params(n, flux, ntot, exact), augmented_points(points))

"""Box3D asymptotic state (Zaizen & Nagakura box prescription) and the growth-rate estimate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rhea_engine.physics.closure import ClosureParams, augmented_points, closure_params, evaluate
from rhea_engine.physics.crossing import crosses
from rhea_engine.physics.fourflux import NU, NUBAR, as_f4, ntot
from rhea_engine.physics.quadrature import MIXING_ORDER, lebedev
from rhea_engine.physics.units import NDENS_TO_INVSEC

FloatArray = NDArray[np.float64]

#: Samples per internal chunk: the [chunk, m] arrays of one chunk stay in cache.
CHUNK = 1024
#: Samples whose closures are solved together (small [N] arrays; amortizes per-call costs).
PARAMS_CHUNK = 65536


@dataclass(frozen=True)
class Box3DResult:
    """Box3D output: final four-flux, growth rate (1/s), crossing flag and sqrt(I+ I-) (cm^-3)."""

    F4_final: FloatArray
    growth_rate: FloatArray
    unstable: NDArray[np.bool_]
    sqrt_IpIm: FloatArray


@dataclass(frozen=True)
class MixingGrid:
    """Box3D on the quadrature grid: G before and after mixing, survival probability Psi."""

    G: FloatArray
    G_mixed: FloatArray
    psi: FloatArray
    unstable: NDArray[np.bool_]


def _e_and_x(F4: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Electron-flavor four-flux [N, 4, 2] and the four-flux of one heavy flavor [N, 4, 2].

    With NF >= 3 the heavy flavors are averaged. With NF = 2 the second flavor is x = mu + tau
    (as in `convert_y_to_2flavor`), so one heavy flavor holds half of it: the three-flavor
    prescription then runs unchanged and x receives what mu and tau together would.
    """
    if F4.shape[3] == 2:
        return F4[..., 0], 0.5 * F4[..., 1]
    return F4[..., 0], F4[..., 1:].mean(axis=3)


Params = dict[tuple[int, str], ClosureParams]


def _species_params(F4: FloatArray, total: FloatArray) -> Params:
    """Closure of (nu|nubar, e|x); where nu and nubar agree everywhere, one shared object."""
    e, x = _e_and_x(F4)
    params: Params = {}
    for name, four_flux in (("e", e), ("x", x)):
        params[(NU, name)] = closure_params(four_flux[:, 3, NU], four_flux[:, :3, NU], ntot=total)
        if np.array_equal(four_flux[:, :, NU], four_flux[:, :, NUBAR]):
            params[(NUBAR, name)] = params[(NU, name)]
        else:
            params[(NUBAR, name)] = closure_params(
                four_flux[:, 3, NUBAR], four_flux[:, :3, NUBAR], ntot=total
            )
    return params


def _take(params: Params, rows: slice) -> Params:
    """The rows of every species, keeping shared objects shared."""
    out: Params = {}
    for key, value in params.items():
        twin = (NU, key[1])
        out[key] = out[twin] if key[0] == NUBAR and value is params[twin] else value.take(rows)
    return out


def _distributions(params: Params, points_aug: FloatArray) -> dict[tuple[int, str], FloatArray]:
    """g on the grid for (nu|nubar, e|x), evaluated once per distinct species."""
    g: dict[tuple[int, str], FloatArray] = {}
    for key, value in params.items():
        twin = (NU, key[1])
        g[key] = (
            g[twin] if key[0] == NUBAR and value is params[twin] else evaluate(value, points_aug)
        )
    return g


def _transfer(
    G: FloatArray, weights: FloatArray
) -> tuple[NDArray[np.bool_], FloatArray, FloatArray, FloatArray]:
    """Where G is on the side with the smaller integral [N, m], r, I+ and I- from G.

    Psi = 1/3 on that side and 1 - 2r/3 elsewhere (G = 0 included, which keeps nu <-> nubar
    an exact symmetry); at r = 1 both values agree, so the side can be read off the sign of
    G times the sign of I- - I+.
    """
    positive = np.maximum(G, 0.0)
    i_plus = positive @ weights
    positive -= G  # now max(-G, 0), exactly
    i_minus = positive @ weights
    big = np.maximum(i_plus, i_minus)
    r = np.divide(np.minimum(i_plus, i_minus), big, out=np.zeros_like(big), where=big > 0)
    side = np.where(i_plus <= i_minus, 1.0, -1.0)[:, None]
    np.multiply(G, side, out=positive)
    return positive > 0, r, i_plus, i_minus


def _box3d_chunk(
    F4: FloatArray, total: FloatArray, params: Params, points: FloatArray, weights: FloatArray
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], FloatArray]:
    g = _distributions(params, augmented_points(points))
    G = g[(NU, "e")] - g[(NUBAR, "e")]
    if g[(NU, "x")] is not g[(NUBAR, "x")]:
        G -= g[(NU, "x")] - g[(NUBAR, "x")]
    unstable = crosses(G, total)
    final = F4.copy()
    sqrt_ipim = np.zeros(F4.shape[0])
    rows: NDArray[np.intp] | slice = np.flatnonzero(unstable)
    if rows.size:  # type: ignore[union-attr]
        if rows.size == F4.shape[0]:  # type: ignore[union-attr]
            rows = slice(None)  # all unstable: views instead of copies
        on_smaller, r, i_plus, i_minus = _transfer(G[rows], weights)
        sqrt_ipim[rows] = np.sqrt(i_plus) * np.sqrt(i_minus)
        # w_k (Omega_k, 1): quadrature of a distribution's four-flux, [m, 4].
        moments = np.ascontiguousarray((np.vstack([points, np.ones(points.shape[1])]) * weights).T)
        # 1 - Psi = 2r/3 everywhere plus 2(1 - r)/3 on the smaller side.
        everywhere = (2.0 * r / 3.0)[:, None]
        smaller_side = (2.0 * (1.0 - r) / 3.0)[:, None]
        nf = F4.shape[3]
        for s in (NU, NUBAR):
            d = g[(s, "e")][rows] - g[(s, "x")][rows]
            moved = everywhere * (d @ moments)
            d *= on_smaller
            moved += smaller_side * (d @ moments)  # [n, 4]: taken from e and given to x
            final[rows, :, s, 0] = F4[rows, :, s, 0] - moved
            share = moved / (nf - 1)  # what e gives up, split evenly over the heavy flavors
            for a in range(1, nf):
                final[rows, :, s, a] = F4[rows, :, s, a] + share
    growth = NDENS_TO_INVSEC * sqrt_ipim
    return final, growth, unstable, sqrt_ipim


def box3d(F4_initial: ArrayLike, order: int = MIXING_ORDER, chunk: int = CHUNK) -> Box3DResult:
    """Box3D asymptotic four-flux in delta form (docs/physics.md §7), vectorized over samples.

    Heavy flavors are averaged for the distributions and what e gives up is split evenly over
    the NF - 1 heavy flavors, so the flavor-summed four-flux of nu and of nubar and each
    flavor's N_nu - N_nubar are conserved to rounding for any NF. At NF = 2 the second flavor
    is x = mu + tau: the result is the three-flavor one with mu = tau = x/2, folded back.
    Stable samples come back bit for bit unchanged with sigma = 0.
    """
    F4 = as_f4(F4_initial, "F4_initial")
    if F4.shape[3] < 2:
        from rhea_engine.errors import PhysicsError

        raise PhysicsError("Box3D needs at least two flavors (NF >= 2).")
    points, weights = lebedev(order)
    n = F4.shape[0]
    final = np.empty_like(F4)
    growth = np.zeros(n)
    unstable = np.zeros(n, dtype=bool)
    sqrt_ipim = np.zeros(n)
    # Closures over large blocks (per-call overhead), grid work in small chunks (cache).
    for block in range(0, n, PARAMS_CHUNK):
        F4_block = F4[block : block + PARAMS_CHUNK]
        total = ntot(F4_block)
        params = _species_params(F4_block, total)
        for start in range(0, F4_block.shape[0], chunk):
            rows = slice(start, start + chunk)
            out = _box3d_chunk(F4_block[rows], total[rows], _take(params, rows), points, weights)
            done = slice(block + start, block + start + out[0].shape[0])
            final[done], growth[done], unstable[done], sqrt_ipim[done] = out
    return Box3DResult(F4_final=final, growth_rate=growth, unstable=unstable, sqrt_IpIm=sqrt_ipim)


def growth_rate(F4: ArrayLike, order: int = MIXING_ORDER) -> FloatArray:
    """Growth-rate estimate sigma = NDENS_TO_INVSEC sqrt(I+ I-) in 1/s (0 where stable)."""
    return box3d(F4, order=order).growth_rate


def mixing_grid(F4_initial: ArrayLike, order: int = MIXING_ORDER) -> MixingGrid:
    """G, Psi and the mixed G' on the grid for every sample (diagnostics and tests; no chunking)."""
    F4 = as_f4(F4_initial, "F4_initial")
    points, weights = lebedev(order)
    total = ntot(F4)
    g = _distributions(_species_params(F4, total), augmented_points(points))
    G = (g[(NU, "e")] - g[(NUBAR, "e")]) - (g[(NU, "x")] - g[(NUBAR, "x")])
    unstable = crosses(G, total)
    on_smaller, r, _, _ = _transfer(G, weights)
    psi = np.where(on_smaller, 1.0 / 3.0, 1.0 - 2.0 * r[:, None] / 3.0)
    psi = np.where(unstable[:, None], psi, 1.0)
    lepton_mixed = {}
    for name in ("e", "x"):
        lepton_mixed[name] = g[(NU, name)] - g[(NUBAR, name)]
    # g'_e - g'_x = (3 Psi - 1)/2 (g_e - g_x), per species; so G' = (3 Psi - 1)/2 G.
    e_new = psi * lepton_mixed["e"] + (1 - psi) * lepton_mixed["x"]
    x_new = 0.5 * ((1 + psi) * lepton_mixed["x"] + (1 - psi) * lepton_mixed["e"])
    return MixingGrid(G=G, G_mixed=e_new - x_new, psi=psi, unstable=unstable)

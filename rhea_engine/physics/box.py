"""Box3D asymptotic state (Zaizen & Nagakura box prescription) and the growth-rate estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rhea_engine.physics.crossing import CHUNK, crosses, species_distributions
from rhea_engine.physics.fourflux import NU, NUBAR, as_f4, ntot
from rhea_engine.physics.quadrature import MIXING_ORDER, lebedev
from rhea_engine.physics.units import NDENS_TO_INVSEC

FloatArray = NDArray[np.float64]


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
    """Electron-flavor four-flux [N, 4, 2] and the heavy-flavor mean [N, 4, 2]."""
    heavy = F4[..., 1] if F4.shape[3] == 2 else F4[..., 1:].mean(axis=3)
    return F4[..., 0], heavy


def _distributions(
    F4: FloatArray, points: FloatArray, total: FloatArray
) -> dict[tuple[int, str], FloatArray]:
    """g for (nu|nubar, e|x) on the grid, reusing arrays where species are identical."""
    e, x = _e_and_x(F4)
    pair = np.stack([e, x], axis=3)
    g: dict[tuple[int, str], FloatArray] = {}
    for s in (NU, NUBAR):
        for a, name in ((0, "e"), (1, "x")):
            reuse = None
            if s == NUBAR and np.array_equal(pair[:, :, NU, a], pair[:, :, NUBAR, a]):
                reuse = g[(NU, name)]
            g[(s, name)] = (
                reuse if reuse is not None else species_distributions(pair, s, a, points, total)
            )
    return g


def _psi(G: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Survival probability Psi[N, m], I+ and I- from G on the grid."""
    i_plus = np.maximum(G, 0.0) @ weights
    i_minus = np.maximum(-G, 0.0) @ weights
    big = np.maximum(i_plus, i_minus)
    r = np.divide(np.minimum(i_plus, i_minus), big, out=np.zeros_like(big), where=big > 0)
    # Psi = 1/3 on the side of G with the smaller integral, 1 - 2r/3 elsewhere (G = 0 included,
    # which keeps nu <-> nubar an exact symmetry); at r = 1 both sides agree.
    smaller_positive = (i_plus <= i_minus)[:, None]
    smaller_negative = (i_minus <= i_plus)[:, None]
    on_smaller = ((G > 0) & smaller_positive) | ((G < 0) & smaller_negative)
    psi = np.where(on_smaller, 1.0 / 3.0, (1.0 - 2.0 * r / 3.0)[:, None])
    return psi, i_plus, i_minus


def _box3d_chunk(
    F4: FloatArray, points: FloatArray, weights: FloatArray
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], FloatArray]:
    total = ntot(F4)
    g = _distributions(F4, points, total)
    G = (g[(NU, "e")] - g[(NUBAR, "e")]) - (g[(NU, "x")] - g[(NUBAR, "x")])
    unstable = crosses(G, total)
    final = F4.copy()
    sqrt_ipim = np.zeros(F4.shape[0])
    rows = np.flatnonzero(unstable)
    if rows.size:
        psi, i_plus, i_minus = _psi(G[rows], weights)
        sqrt_ipim[rows] = np.sqrt(i_plus) * np.sqrt(i_minus)
        one_minus_psi = 1.0 - psi
        # w_k (Omega_k, 1): quadrature of a distribution's four-flux.
        moments = np.vstack([points, np.ones(points.shape[1])]) * weights
        nf = F4.shape[3]
        for s in (NU, NUBAR):
            d = one_minus_psi * (g[(s, "e")][rows] - g[(s, "x")][rows])
            moved = d @ moments.T  # [n, 4]: the four-flux taken from e and given to x
            final[rows, :, s, 0] = F4[rows, :, s, 0] - moved
            half = 0.5 * moved
            for a in range(1, nf):
                final[rows, :, s, a] = F4[rows, :, s, a] + half
    growth = NDENS_TO_INVSEC * sqrt_ipim
    return final, growth, unstable, sqrt_ipim


def box3d(F4_initial: ArrayLike, order: int = MIXING_ORDER, chunk: int = CHUNK) -> Box3DResult:
    """Box3D asymptotic four-flux in delta form (PHYSICS.md §7), vectorized over samples.

    Heavy flavors are averaged for the distributions; mu and tau both receive the x change,
    so the flavor-summed four-flux of nu and of nubar and each flavor's N_nu - N_nubar are
    conserved to rounding. Stable samples come back bit for bit unchanged with sigma = 0.
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
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out = _box3d_chunk(F4[start:stop], points, weights)
        final[start:stop], growth[start:stop], unstable[start:stop], sqrt_ipim[start:stop] = out
    return Box3DResult(F4_final=final, growth_rate=growth, unstable=unstable, sqrt_IpIm=sqrt_ipim)


def growth_rate(F4: ArrayLike, order: int = MIXING_ORDER) -> FloatArray:
    """Growth-rate estimate sigma = NDENS_TO_INVSEC sqrt(I+ I-) in 1/s (0 where stable)."""
    return box3d(F4, order=order).growth_rate


def mixing_grid(F4_initial: ArrayLike, order: int = MIXING_ORDER) -> MixingGrid:
    """G, Psi and the mixed G' on the grid for every sample (diagnostics and tests; no chunking)."""
    F4 = as_f4(F4_initial, "F4_initial")
    points, weights = lebedev(order)
    total = ntot(F4)
    g = _distributions(F4, points, total)
    G = (g[(NU, "e")] - g[(NUBAR, "e")]) - (g[(NU, "x")] - g[(NUBAR, "x")])
    unstable = crosses(G, total)
    psi, _, _ = _psi(G, weights)
    psi = np.where(unstable[:, None], psi, 1.0)
    lepton_mixed = {}
    for name in ("e", "x"):
        lepton_mixed[name] = g[(NU, name)] - g[(NUBAR, name)]
    # g'_e - g'_x = (3 Psi - 1)/2 (g_e - g_x), per species; so G' = (3 Psi - 1)/2 G.
    e_new = psi * lepton_mixed["e"] + (1 - psi) * lepton_mixed["x"]
    x_new = 0.5 * ((1 + psi) * lepton_mixed["x"] + (1 - psi) * lepton_mixed["e"])
    return MixingGrid(G=G, G_mixed=e_new - x_new, psi=psi, unstable=unstable)


_ = math  # keep the import for readers of the formulas above

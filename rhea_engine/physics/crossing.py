"""Crossing test of the lepton-number angular distributions (maximum-entropy closure)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rhea_engine.physics.closure import (
    ClosureParams,
    augmented_points,
    closure_params,
    evaluate,
    maxent_distribution,
)
from rhea_engine.physics.fourflux import NDENS, NU, NUBAR, as_f4, ntot
from rhea_engine.physics.quadrature import STABILITY_ORDER, lebedev

FloatArray = NDArray[np.float64]

#: A crossing needs G above +eps in one direction and below -eps in another, eps = this * ntot/4pi.
CROSSING_EPSILON = 1e-12
#: Samples per internal chunk: bounds the [chunk, m] temporaries.
CHUNK = 4096
#: Rows per [rows, m] grid product: keeps the temporaries in cache.
GRID_CHUNK = 1024


def species_distributions(
    F4: FloatArray, s: int, a: int, points: FloatArray, total: FloatArray
) -> FloatArray:
    """g[N, m] of species (s, a) of F4 on points, with ntot `total` for the zero-flux threshold."""
    return maxent_distribution(F4[:, NDENS, s, a], F4[:, :3, s, a], points, ntot=total)


def lepton_distributions(
    F4: FloatArray, points: FloatArray, total: FloatArray
) -> list[FloatArray | None]:
    """Per flavor, g_nu - g_nubar on the points; None where nu and nubar are identical everywhere."""
    out: list[FloatArray | None] = []
    for a in range(F4.shape[3]):
        if np.array_equal(F4[:, :, NU, a], F4[:, :, NUBAR, a]):
            out.append(None)
            continue
        lepton = species_distributions(F4, NU, a, points, total)
        lepton -= species_distributions(F4, NUBAR, a, points, total)
        out.append(lepton)
    return out


def crosses(G: FloatArray, total: FloatArray) -> NDArray[np.bool_]:
    """True where G[N, m] exceeds +eps in some direction and -eps in another."""
    eps = CROSSING_EPSILON * total / (4.0 * math.pi)
    return (G.max(axis=1) > eps) & (G.min(axis=1) < -eps)


def _cross_two_species(F4: FloatArray, points: FloatArray, total: FloatArray) -> NDArray[np.bool_]:
    """Crossing of G = g_nu_e - g_nubar_e (heavy nu and nubar identical), decided in log space.

    Where both distributions are exponentials, sign G = sign of a linear function of Omega,
    log g_nu - log g_nubar; its extremes on the grid settle most samples, and G itself is
    evaluated at the two extreme directions to apply the eps threshold. Samples that these
    cannot settle with a margin are evaluated on the full grid.
    """
    nu = closure_params(F4[:, NDENS, NU, 0], F4[:, :3, NU, 0], ntot=total)
    nubar = closure_params(F4[:, NDENS, NUBAR, 0], F4[:, :3, NUBAR, 0], ntot=total)
    eps = CROSSING_EPSILON * total / (4.0 * math.pi)
    unstable = np.zeros(F4.shape[0], dtype=bool)
    # One distribution zero, or both isotropic: G has one sign.
    settled = (nu.n_over_4pi == 0) | (nubar.n_over_4pi == 0) | ((nu.z == 0) & (nubar.z == 0))
    logs = np.flatnonzero(~settled)
    full = np.zeros(0, dtype=np.intp)
    pts_aug = augmented_points(points)
    if logs.size:
        a, b = nu.take(logs), nubar.take(logs)
        # log g = c + Z unit.Omega exactly for the exponential form; for small Z the linear
        # form (N/4pi)(1 + Z mu) differs from e^{Z mu} N/4pi by at most Z^2/2 in log space.
        c_a = np.where(
            a.small, np.log(a.n_over_4pi), np.log(np.where(a.small, 1.0, a.prefactor)) - a.z
        )
        c_b = np.where(
            b.small, np.log(b.n_over_4pi), np.log(np.where(b.small, 1.0, b.prefactor)) - b.z
        )
        offset = c_a - c_b
        weights = np.empty((logs.size, 4))
        weights[:, :3] = a.unit * a.z[:, None] - b.unit * b.z[:, None]
        weights[:, 3] = offset
        margin = 1e-10 * (100.0 + a.z + b.z + np.abs(offset))
        margin += np.where(a.small, a.z**2, 0.0) + np.where(b.small, b.z**2, 0.0)
        h_max, h_min = np.empty(logs.size), np.empty(logs.size)
        k_max, k_min = np.empty(logs.size, dtype=np.intp), np.empty(logs.size, dtype=np.intp)
        # One buffer for every slice: fresh multi-megabyte arrays would each cost page faults.
        buffer = np.empty((min(GRID_CHUNK, logs.size), pts_aug.shape[1]))
        for start in range(0, logs.size, GRID_CHUNK):
            part = slice(start, start + GRID_CHUNK)
            h = buffer[: min(GRID_CHUNK, logs.size - start)]
            np.matmul(weights[part], pts_aug, out=h)
            k_max[part], k_min[part] = h.argmax(axis=1), h.argmin(axis=1)
            rows = np.arange(h.shape[0])
            h_max[part], h_min[part] = h[rows, k_max[part]], h[rows, k_min[part]]
        maybe = (h_max > -margin) & (h_min < margin)
        idx = np.flatnonzero(maybe)
        if idx.size:

            def g_at(p: ClosureParams, k: NDArray[np.intp]) -> FloatArray:
                mu = np.einsum("ij,ji->i", p.unit[idx], points[:, k])
                z, small = p.z[idx], p.small[idx]
                exponential = p.prefactor[idx] * np.exp(np.where(small, 0.0, z) * (mu - 1.0))
                return np.where(small, p.n_over_4pi[idx] * (1.0 + z * mu), exponential)

            e = eps[logs[idx]]
            confirmed = (g_at(a, k_max[idx]) - g_at(b, k_max[idx]) > e) & (
                g_at(a, k_min[idx]) - g_at(b, k_min[idx]) < -e
            )
            unstable[logs[idx[confirmed]]] = True
            full = logs[idx[~confirmed]]
    if full.size:
        G = evaluate(nu.take(full), pts_aug) - evaluate(nubar.take(full), pts_aug)
        unstable[full] = crosses(G, total[full])
    return unstable


def _crossing_chunk(F4: FloatArray, points: FloatArray) -> NDArray[np.bool_]:
    total = ntot(F4)
    nf = F4.shape[3]
    heavy_lepton_free = all(
        np.array_equal(F4[:, :, NU, a], F4[:, :, NUBAR, a]) for a in range(1, nf)
    )
    if nf >= 2 and heavy_lepton_free:
        return _cross_two_species(F4, points, total)
    lepton = lepton_distributions(F4, points, total)
    unstable = np.zeros(F4.shape[0], dtype=bool)
    seen: list[tuple[int, int]] = []
    for a in range(nf):
        for b in range(a + 1, nf):
            # Identical flavors (mu = tau) give G = 0 or the same pair twice: test it once.
            if np.array_equal(F4[..., a], F4[..., b]) or any(
                np.array_equal(F4[..., a], F4[..., a2]) and np.array_equal(F4[..., b], F4[..., b2])
                for a2, b2 in seen
            ):
                continue
            seen.append((a, b))
            la, lb = lepton[a], lepton[b]
            if la is None and lb is None:
                continue
            if la is None:
                G = -lb  # type: ignore[operator]
            elif lb is None:
                G = la
            else:
                G = la - lb
            unstable |= crosses(G, total)
    return unstable


def crossing_test(
    F4: ArrayLike, order: int = STABILITY_ORDER, chunk: int = CHUNK
) -> NDArray[np.bool_]:
    """Unstable[N]: does any flavor pair's lepton-number difference G cross zero (docs/physics.md §6)?"""
    arr = as_f4(F4)
    points, _ = lebedev(order)
    unstable = np.zeros(arr.shape[0], dtype=bool)
    for start in range(0, arr.shape[0], chunk):
        stop = min(start + chunk, arr.shape[0])
        unstable[start:stop] = _crossing_chunk(arr[start:stop], points)
    return unstable

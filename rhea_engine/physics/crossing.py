"""Crossing test of the lepton-number angular distributions (maximum-entropy closure)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rhea_engine.physics.closure import maxent_distribution
from rhea_engine.physics.fourflux import NDENS, NU, NUBAR, as_f4, ntot
from rhea_engine.physics.quadrature import STABILITY_ORDER, lebedev

FloatArray = NDArray[np.float64]

#: A crossing needs G above +eps in one direction and below -eps in another, eps = this * ntot/4pi.
CROSSING_EPSILON = 1e-12
#: Samples per internal chunk: bounds the [chunk, m] temporaries.
CHUNK = 4096


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


def _crossing_chunk(F4: FloatArray, points: FloatArray) -> NDArray[np.bool_]:
    total = ntot(F4)
    nf = F4.shape[3]
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
    """Unstable[N]: does any flavor pair's lepton-number difference G cross zero (PHYSICS.md §6)?"""
    arr = as_f4(F4)
    points, _ = lebedev(order)
    unstable = np.zeros(arr.shape[0], dtype=bool)
    for start in range(0, arr.shape[0], chunk):
        stop = min(start + chunk, arr.shape[0])
        unstable[start:stop] = _crossing_chunk(arr[start:stop], points)
    return unstable

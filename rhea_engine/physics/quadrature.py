"""Lebedev quadrature on the unit sphere (weights sum to 4 pi), cached per order."""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from rhea_engine.errors import PhysicsError

#: Orders whose Lebedev rules have negative weights: they can turn a positive distribution
#: into negative integrals and are refused.
NEGATIVE_WEIGHT_ORDERS = frozenset({13, 25, 27})
#: Default order for mixing and growth rates (110 points).
MIXING_ORDER = 17
#: Default order for stability labels (590 points); order 17 misses ~0.1-0.4 % of crossings.
STABILITY_ORDER = 41


@functools.lru_cache(maxsize=16)
def _rule(order: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from scipy.integrate import lebedev_rule

    points, weights = lebedev_rule(order)
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    points.setflags(write=False)
    weights.setflags(write=False)
    return points, weights


def lebedev(order: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lebedev rule of the given order: (points [3, m], weights [m]), read-only arrays."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise PhysicsError(f"The Lebedev order must be an integer, got {order!r}.")
    order = int(order)
    if order in NEGATIVE_WEIGHT_ORDERS:
        raise PhysicsError(
            f"Lebedev order {order} has negative weights and is refused (orders 13, 25 and 27 "
            "are). Use order 17 for mixing and growth rates or 41 or more for stability labels."
        )
    try:
        return _rule(order)
    except (ValueError, NotImplementedError) as exc:
        raise PhysicsError(
            f"There is no Lebedev rule of order {order} ({exc}). Use an odd order from 3 to 131, "
            "e.g. 17 for mixing and 41 for stability labels."
        ) from None

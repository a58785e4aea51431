"""Closure, quadrature and four-flux helpers: unit cases of docs/physics.md §1, §4, §5."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rhea_engine.errors import PhysicsError
from rhea_engine.physics import (
    NDENS_TO_INVSEC,
    NDENS_TO_INVSEC_LEGACY_NO_SQRT2,
    conservation_error,
    eln,
    eln_violation,
    flavor_sum,
    flux_factor,
    inverse_langevin,
    inverse_langevin_jedynak,
    langevin,
    lebedev,
    maxent_distribution,
    minkowski,
    ntot,
)


def test_inverse_langevin_reference_values() -> None:
    z = inverse_langevin([0.5, 0.9, 0.99])
    assert z[0] == pytest.approx(1.796756, abs=5e-7)
    assert z[1] == pytest.approx(10.000000, abs=5e-7)
    assert z[2] == pytest.approx(100.0, rel=1e-6)


def test_inverse_langevin_solves_to_tolerance() -> None:
    f = np.concatenate([np.linspace(0.0, 0.999999, 20001), [1e-7, 5e-7, 2e-6, 1e-3]])
    z = inverse_langevin(f)
    assert np.all(np.abs(langevin(z) - f) < 1e-13)
    assert np.all(np.diff(z[:20001]) > 0)  # monotone
    assert inverse_langevin(1e-7) == pytest.approx(3e-7, rel=1e-12)


def test_jedynak_error_peaks_near_095() -> None:
    f = np.linspace(0.01, 0.999, 200001)
    rel = np.abs(inverse_langevin_jedynak(f) / inverse_langevin(f) - 1.0)
    assert 7.0e-4 < rel.max() < 8.0e-4
    assert 0.93 < f[rel.argmax()] < 0.96


def test_flux_factor_near_one_stays_finite() -> None:
    z = inverse_langevin([1.0 - 1e-15, 1.0, 1.0 + 1e-9])
    assert np.all(np.isfinite(z)) and np.all(z > 1e11)
    pts, _ = lebedev(17)
    g = maxent_distribution([1.0, 1.0], [[0.0, 0.0, 1.0], [0.0, 1.0 - 1e-13, 0.0]], pts)
    assert np.all(np.isfinite(g)) and np.all(g >= 0)


@pytest.mark.parametrize("f", [1.1, 1.0 + 1e-3, -0.1, np.nan])
def test_flux_factor_out_of_range_is_refused(f: float) -> None:
    with pytest.raises(PhysicsError, match="flux factor"):
        inverse_langevin([0.2, f])
    with pytest.raises(PhysicsError):
        inverse_langevin_jedynak(f)


def test_distribution_refuses_flux_above_density() -> None:
    pts, _ = lebedev(17)
    with pytest.raises(PhysicsError, match="flux factor"):
        maxent_distribution([1e32], [[0.0, 0.0, 1.2e32]], pts)


def test_distribution_special_cases() -> None:
    pts, w = lebedev(41)
    g = maxent_distribution(
        [0.0, 3.0, 2.0],
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e-14, 0, 0]],
        pts,
        ntot=[5.0, 5.0, 5.0],
    )
    assert np.all(g[0] == 0.0)
    assert np.allclose(g[1], 3.0 / (4 * math.pi), rtol=0, atol=1e-15)
    assert np.allclose(g[2], 2.0 / (4 * math.pi), rtol=0, atol=1e-15)


@pytest.mark.parametrize("f", [1e-5, 0.05, 0.3, 0.6])
def test_distribution_moments(f: float) -> None:
    pts, w = lebedev(41)
    flux = np.array([[0.3, -0.4, 0.866]]) / np.linalg.norm([0.3, -0.4, 0.866]) * f * 2.0
    g = maxent_distribution([2.0], flux, pts)
    assert g @ w == pytest.approx(2.0, rel=1e-12)
    assert np.allclose((g[0] * w) @ pts.T, flux[0], rtol=0, atol=1e-12)
    assert np.all(g > 0)


def test_distribution_large_z_no_overflow() -> None:
    pts, w = lebedev(131)
    g = maxent_distribution([1.0], [[0.0, 0.0, 0.999]], pts)
    assert np.all(np.isfinite(g)) and g.max() > 10.0


@pytest.mark.parametrize("order", [13, 25, 27])
def test_lebedev_refuses_negative_weights(order: int) -> None:
    with pytest.raises(PhysicsError, match="negative weights"):
        lebedev(order)


def test_lebedev_rules() -> None:
    for order, m in ((17, 110), (41, 590)):
        pts, w = lebedev(order)
        assert pts.shape == (3, m) and w.shape == (m,)
        assert w.sum() == pytest.approx(4 * math.pi, rel=1e-14)
        assert np.all(w > 0)
        assert np.allclose(np.linalg.norm(pts, axis=0), 1.0)
    with pytest.raises(PhysicsError):
        lebedev(16)
    with pytest.raises(PhysicsError):
        lebedev(1001)


def test_four_flux_helpers() -> None:
    F4 = np.zeros((2, 4, 2, 3))
    F4[:, 3] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    F4[0, 2, 0, 0] = 0.5
    F4[1, 0, 1, 2] = -3.0
    assert np.array_equal(ntot(F4), [21.0, 21.0])
    ff = flux_factor(F4)
    assert ff[0, 0, 0] == 0.5 and ff[1, 1, 2] == 0.5 and ff[0, 0, 1] == 0.0
    assert np.array_equal(eln(F4)[0], [-3.0, -3.0, -3.0])
    assert flavor_sum(F4).shape == (2, 4, 2)
    # Minkowski product with (x, y, z, t) on axis 1: F.F - N^2.
    assert minkowski(F4, F4)[0, 0, 0] == pytest.approx(0.25 - 1.0)
    assert np.all(conservation_error(F4, F4) == 0.0)
    moved = F4.copy()
    moved[:, 3, 0, 0] += 0.21
    moved[:, 3, 0, 1] -= 0.21
    assert np.allclose(conservation_error(F4, moved), 0.0)
    assert eln_violation(F4, moved) == pytest.approx(0.01)
    assert np.all(flux_factor(np.zeros((0, 4, 2, 3))).shape == (0, 2, 3))


def test_growth_rate_constant() -> None:
    """sqrt(2) G_F (hbar c)^3 / hbar from the constants docs/physics.md §1 gives, in CGS.

    (Relative comparisons: pytest.approx's default absolute tolerance of 1e-12 would accept
    any number of order 1e-22.)
    """
    hbar = 1.05457266e-27  # erg s
    c = 2.99792458e10  # cm / s
    g_fermi = 1.1663787e-5  # GeV^-2
    gev = 1e9 * 1.60218e-12  # erg
    expected = math.sqrt(2.0) * (g_fermi / gev**2) * (hbar * c) ** 3 / hbar  # cm^3 / s
    assert math.isclose(NDENS_TO_INVSEC, expected, rel_tol=1e-12, abs_tol=0.0)
    assert math.isclose(expected, 1.9255158167467008e-22, rel_tol=1e-12, abs_tol=0.0)
    ratio = NDENS_TO_INVSEC / NDENS_TO_INVSEC_LEGACY_NO_SQRT2
    assert math.isclose(ratio, math.sqrt(2.0), rel_tol=1e-9)

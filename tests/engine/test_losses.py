"""Loss functions: exact values on hand-made cases, and the two upstream bugs stay fixed."""

from __future__ import annotations

import math

import pytest
import torch

from rhea_engine import losses as L
from rhea_engine.physics.units import NDENS_TO_INVSEC


def _F4(n: int = 5) -> torch.Tensor:
    torch.manual_seed(0)
    F4 = torch.zeros(n, 4, 2, 3, dtype=torch.float64)
    F4[:, 3] = torch.rand(n, 2, 3) + 0.1
    F4[:, :3] = 0.3 * (torch.rand(n, 3, 2, 3) - 0.5) * F4[:, 3:4]
    return F4 / F4[:, 3].sum(dim=(1, 2))[:, None, None, None]


def test_stability_loss_is_bce_on_raw_logits() -> None:
    logit = torch.tensor([-3.0, 0.5, 2.0, 8.0], dtype=torch.float64)
    label = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    p = torch.sigmoid(logit)
    expected = -(label * torch.log(p) + (1 - label) * torch.log(1 - p)).mean()
    loss, max_err = L.stability_loss(logit, label)
    assert torch.allclose(loss, expected, rtol=1e-12)
    assert torch.allclose(max_err, (p - label).abs().max())


def test_stability_loss_vanishes_for_confident_correct_predictions() -> None:
    # The upstream bug (sigmoid, then BCE-with-logits) has a floor of log(1 + e^-1) ~ 0.31 here.
    logit = torch.tensor([40.0, -40.0, 30.0])
    label = torch.tensor([1.0, 0.0, 1.0])
    loss, _ = L.stability_loss(logit, label)
    assert float(loss) < 1e-10
    buggy = torch.nn.functional.binary_cross_entropy_with_logits(torch.sigmoid(logit), label)
    assert float(buggy) > 0.3  # what the test guards against
    # and its gradient still pushes a wrong logit the right way, with the full BCE slope
    wrong = torch.tensor([-5.0], requires_grad=True)
    L.stability_loss(wrong, torch.tensor([1.0]))[0].backward()
    assert wrong.grad is not None and float(wrong.grad) < -0.99


def test_growthrate_loss_compares_logs() -> None:
    ntot = torch.tensor([1e32, 3e34, 5e30], dtype=torch.float64)
    sigma = torch.tensor([4.8e10, 1e12, 3e8], dtype=torch.float64)
    target = L.growthrate_target(sigma, ntot)
    assert torch.allclose(target, torch.log(sigma / (ntot * NDENS_TO_INVSEC)))
    loss, max_err = L.growthrate_loss(target.clone(), target)
    assert float(loss) == 0.0 and float(max_err) == 0.0
    # a prediction off by a factor 2 in rate costs (ln 2)^2 whatever the magnitude of sigma
    loss, max_err = L.growthrate_loss(target + math.log(2.0), target)
    assert math.isclose(float(loss), math.log(2.0) ** 2, rel_tol=1e-12)
    assert math.isclose(float(max_err), math.log(2.0), rel_tol=1e-12)
    # the upstream bug compared exp(head)/ntot with the log: never zero at the right answer
    buggy = ((torch.exp(target) / ntot - target) ** 2).mean()
    assert float(buggy) > 1.0


def test_ndens_fluxmag_direction() -> None:
    true = _F4()
    pred = true.clone()
    assert float(L.ndens_loss(pred, true)[0]) == 0.0
    assert float(L.fluxmag_loss(pred, true)[0]) == 0.0
    assert float(L.direction_loss(pred, true)[0]) < 1e-12
    pred[:, 3] += 0.01
    loss, max_err = L.ndens_loss(pred, true)
    assert math.isclose(float(loss), 1e-4, rel_tol=1e-9) and math.isclose(
        float(max_err), 0.01, rel_tol=1e-9
    )
    flipped = true.clone()
    flipped[:, :3] *= -1
    assert math.isclose(float(L.direction_loss(flipped, true)[0]), 2.0, rel_tol=1e-12)
    assert float(L.fluxmag_loss(flipped, true)[0]) < 1e-30


def test_direction_ignores_species_without_flux() -> None:
    true = _F4()
    true[:, :3, 1, :] = 0.0  # antineutrinos have no flux: no direction to compare
    pred = true.clone()
    pred[:, :3, 1, :] = 0.1  # whatever is predicted there must not count
    loss, _ = L.direction_loss(pred, true)
    assert float(loss) < 1e-12
    assert torch.isfinite(loss)


def test_unphysical_penalty() -> None:
    F4 = _F4()
    assert float(L.unphysical_loss(F4)[0]) == 0.0
    bad = F4.clone()
    bad[0, 3, 0, 0] = -0.1
    loss, max_err = L.unphysical_loss(bad)
    assert float(loss) > 0 and math.isclose(float(max_err), 0.1, rel_tol=1e-9)
    superluminal = F4.clone()
    superluminal[0, 0, 1, 1] = 2 * superluminal[0, 3, 1, 1]
    assert float(L.unphysical_loss(superluminal)[0]) > 0


def test_eln_violation() -> None:
    F4 = _F4()
    assert float(L.eln_violation(F4, F4)) == 0.0
    moved = F4.clone()
    moved[2, 3, 0, 0] += 0.02  # nu_e up, nu_mu down: flavour-summed number kept, ELN not
    moved[2, 3, 0, 1] -= 0.02
    assert math.isclose(float(L.eln_violation(F4, moved)), 0.02, rel_tol=1e-9)


def test_combinations() -> None:
    values = {
        "ndens": torch.tensor(2.0),
        "stability": torch.tensor(0.5),
        "unphysical": torch.tensor(1.0),
    }
    mult = {"ndens": 1.0, "stability": 2.0, "unphysical": 10.0}
    assert float(L.combine_fixed(values, mult)) == 13.0
    s = {"ndens": torch.tensor(math.log(2.0)), "stability": torch.tensor(0.0)}
    expected = 0.5 * 2.0 + math.log(2.0) + 1.0 + 10.0
    assert math.isclose(float(L.combine_learned(values, mult, s)), expected, rel_tol=1e-6)


def test_pcgrad_projects_conflicts_only() -> None:
    g1 = torch.tensor([1.0, 0.0])
    g2 = torch.tensor([-1.0, 1.0])
    out = L.pcgrad([g1, g2], [[1], [0]])
    # g1 projected off g2: [0.5, 0.5]; g2 projected off g1: [0, 1]
    assert torch.allclose(out, torch.tensor([0.5, 1.5]))
    agree = L.pcgrad([g1, torch.tensor([1.0, 1.0])], [[1], [0]])
    assert torch.allclose(agree, torch.tensor([2.0, 1.0]))


@pytest.mark.parametrize("fn", [L.ndens_loss, L.fluxmag_loss, L.direction_loss])
def test_losses_are_differentiable(fn: object) -> None:
    true = _F4()
    pred = (true + 0.01 * torch.randn_like(true)).requires_grad_(True)
    loss, _ = fn(pred, true)  # type: ignore[operator]
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_final_state_losses_match_separate_functions() -> None:
    true = _F4(50)
    pred = true + 0.05 * torch.randn_like(true)
    pred[3, 3, 0, 0] = -0.01  # an unphysical entry
    true[:, :3, 1, 2] = 0.0  # a species without flux
    fused = L.final_state_losses(pred, true)
    separate = {
        "ndens": L.ndens_loss(pred, true),
        "fluxmag": L.fluxmag_loss(pred, true),
        "direction": L.direction_loss(pred, true),
        "unphysical": L.unphysical_loss(pred),
    }
    for task, (loss, max_err) in separate.items():
        assert torch.allclose(fused[task][0], loss, rtol=1e-12, atol=0), task
        assert torch.allclose(fused[task][1], max_err, rtol=1e-12, atol=0), task

"""The network: scriptability, conservation by construction, invariances, output conventions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from train_fixtures import random_F4

from rhea_engine.config import ACTIVATIONS, TrainConfig
from rhea_engine.errors import ConfigError
from rhea_engine.model import FFIModel, build_model, model_from_checkpoint, n_inputs
from rhea_engine.models.transfer import mlp_layers
from rhea_engine.physics.units import NDENS_TO_INVSEC


def replace_unchecked(config: TrainConfig, **changes: object) -> TrainConfig:
    """A config with values validation would refuse (to test the model's own checks)."""
    out = copy.copy(config)
    for key, value in changes.items():
        object.__setattr__(out, key, value)
    return out


def _F4(n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(random_F4(n, seed), dtype=torch.float64)


def _model(**changes: object) -> FFIModel:
    torch.manual_seed(0)
    return build_model(TrainConfig(**changes)).double().eval()  # type: ignore[arg-type]


def _rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.as_tensor(np.random.default_rng(seed).normal(size=(3, 3))))
    return q * torch.sign(torch.det(q))


@pytest.mark.parametrize("lepton", ["none", "direct", "ymatrix"])
@pytest.mark.parametrize("heavies", [True, False])
def test_flavor_summed_number_and_flux_conserved(lepton: str, heavies: bool) -> None:
    model = _model(conserve_lepton_number=lepton, average_heavies_in_final_state=heavies)
    F4 = _F4()
    F4_final, _, _ = model.predict_all(F4)
    ntot = F4[:, 3].sum(dim=(1, 2))
    drift = (F4_final.sum(dim=3) - F4.sum(dim=3)).abs().amax(dim=(1, 2)) / ntot
    assert drift.max() < 1e-12


def test_eln_conservation_options() -> None:
    F4 = _F4()
    ntot = F4[:, 3].sum(dim=(1, 2))[:, None]

    @torch.no_grad()
    def eln_violation(model: FFIModel) -> float:
        out = model.predict_all(F4)[0]
        d = (out[:, 3, 0] - out[:, 3, 1]) - (F4[:, 3, 0] - F4[:, 3, 1])
        return float((d.abs() / ntot).max())

    assert eln_violation(_model(conserve_lepton_number="direct")) < 1e-12
    assert eln_violation(_model(conserve_lepton_number="ymatrix")) < 1e-12
    assert eln_violation(_model(conserve_lepton_number="none")) > 1e-4  # the option really matters
    model32 = build_model(TrainConfig(conserve_lepton_number="direct")).eval()
    out = model32.predict_all(F4.float())[0].double()
    d = (out[:, 3, 0] - out[:, 3, 1]) - (F4[:, 3, 0] - F4[:, 3, 1])
    assert float((d.abs() / ntot).max()) < 1e-6


def test_heavy_averaging_gives_equal_mu_tau_rows() -> None:
    _, _, y_dens, _ = _model(
        average_heavies_in_final_state=True, conserve_lepton_number="none"
    ).heads_from_X(_model().X_from_F4(_F4()))
    assert torch.equal(y_dens[:, :, 1], y_dens[:, :, 2])
    _, _, y_dens, _ = _model(average_heavies_in_final_state=False).heads_from_X(
        _model().X_from_F4(_F4())
    )
    assert not torch.equal(y_dens[:, :, 1], y_dens[:, :, 2])


def test_inputs_rotation_invariant_and_scale_free() -> None:
    model = _model()
    F4 = _F4()
    X = model.X_from_F4(F4)
    assert X.shape == (64, n_inputs(3, True)) == (64, 27)
    rotated = F4.clone()
    rotated[:, :3] = torch.einsum("ij,njsa->nisa", _rotation(1), F4[:, :3])
    assert torch.allclose(model.X_from_F4(rotated), X, atol=1e-12, rtol=0)
    assert torch.allclose(model.X_from_F4(F4 * 1e3), X, atol=1e-12, rtol=0)
    # outputs follow: final state rotates with the input, growth rate scales with ntot
    F4_final, sigma, p = model.predict_all(F4)
    F4_final_rot, sigma_rot, p_rot = model.predict_all(rotated)
    expected = F4_final.clone()
    expected[:, :3] = torch.einsum("ij,njsa->nisa", _rotation(1), F4_final[:, :3])
    assert torch.allclose(F4_final_rot, expected, rtol=1e-9, atol=1e-9 * float(F4.abs().max()))
    assert torch.allclose(sigma_rot, sigma) and torch.allclose(p_rot, p)
    assert torch.allclose(model.predict_all(F4 * 2)[1], 2 * sigma)


def test_input_values_are_minkowski_products() -> None:
    model = _model(do_fdotu=True)
    F4 = _F4(4)
    ntot = F4[:, 3].sum(dim=(1, 2))
    v = (F4 / ntot[:, None, None, None]).reshape(4, 4, 6)
    # first entry: species 0 with itself, |F|^2 - N^2; last six: -N of each species
    X = model.X_from_F4(F4)
    assert torch.allclose(X[:, 0], (v[:, :3, 0] ** 2).sum(1) - v[:, 3, 0] ** 2)
    assert torch.allclose(X[:, -6:], -v[:, 3])
    assert _model(do_fdotu=False).X_from_F4(F4).shape[1] == 21


def test_growth_rate_units_and_whiskythc() -> None:
    model = _model()
    F4 = _F4()
    X = model.X_from_F4(F4)
    logit, log_growth, _, _ = model.heads_from_X(X)
    _, sigma, stability = model.predict_all(F4)
    ntot = F4[:, 3].sum(dim=(1, 2))
    assert torch.allclose(sigma, torch.exp(log_growth) * ntot * NDENS_TO_INVSEC)
    assert torch.allclose(stability, torch.sigmoid(logit))
    assert torch.allclose(model.predict_stability(F4), stability)
    with torch.no_grad():
        model.stability_head[-1].bias.fill_(50.0)  # everything "stable"
    _, _, sigma_thc = model.predict_WhiskyTHC(F4)
    assert torch.all(sigma_thc == 0)
    with torch.no_grad():
        model.stability_head[-1].bias.fill_(-50.0)
    y_dens, y_flux, sigma_thc = model.predict_WhiskyTHC(F4)
    assert torch.all(sigma_thc > 0)
    assert torch.allclose(model.F4_from_y(F4, y_dens, y_flux), model.predict_all(F4)[0])


def test_convert_y_to_2flavor_maps_x_densities() -> None:
    model = _model(average_heavies_in_final_state=False, conserve_lepton_number="none")
    F4 = _F4()
    y_dens, _, _ = model.predict_WhiskyTHC(F4)
    y2 = model.convert_y_to_2flavor(y_dens)
    assert y2.shape == (64, 2, 2, 2, 2)
    N3 = F4[:, 3]  # mu = tau in these inputs
    N2 = torch.stack([N3[:, :, 0], N3[:, :, 1] + N3[:, :, 2]], dim=2)
    final3 = torch.einsum("nsatb,ntb->nsa", y_dens, N3)
    final2 = torch.einsum("nsatb,ntb->nsa", y2, N2)
    assert torch.allclose(final2[:, :, 0], final3[:, :, 0])
    assert torch.allclose(final2[:, :, 1], final3[:, :, 1] + final3[:, :, 2])


@pytest.mark.parametrize("lepton", ["none", "direct", "ymatrix"])
def test_jit_script_matches_eager(lepton: str) -> None:
    model = build_model(TrainConfig(conserve_lepton_number=lepton, dropout_probability=0.1)).eval()
    scripted = torch.jit.script(model)
    F4 = _F4(32).float()
    for eager_out, script_out in zip(model.predict_all(F4), scripted.predict_all(F4), strict=True):
        assert torch.equal(eager_out, script_out)
    assert torch.equal(model.predict_stability(F4), scripted.predict_stability(F4))
    for a, b in zip(model.predict_WhiskyTHC(F4), scripted.predict_WhiskyTHC(F4), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(model.X_from_F4(F4), scripted.X_from_F4(F4))
    y = model.predict_WhiskyTHC(F4)[0]
    assert torch.equal(model.convert_y_to_2flavor(y), scripted.convert_y_to_2flavor(y))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds(activation: str) -> None:
    model = build_model(
        TrainConfig(activation=activation, do_batchnorm=False, nhidden_shared=2, width_shared=8)
    ).eval()
    assert torch.isfinite(model.predict_all(_F4(8).float())[0]).all()
    layers = [type(m).__name__.lower() for m in model.shared]
    assert any(activation.replace("_", "") in name for name in layers)
    assert "batchnorm1d" not in layers and layers.count("linear") == 3


def test_unknown_activation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="activation"):
        TrainConfig(activation="os.system")
    with pytest.raises(ConfigError, match="(?i)activation"):
        mlp_layers(4, 4, 0, 1, replace_unchecked(TrainConfig(), activation="sigmoid"))


def test_model_from_checkpoint_is_eval_and_equal() -> None:
    config = TrainConfig(width_shared=8)
    model = build_model(config)
    ckpt = {"config": config.to_dict(), "model": model.state_dict()}
    loaded = model_from_checkpoint(ckpt)
    assert not loaded.training
    F4 = _F4(8).float()
    assert torch.equal(loaded.predict_all(F4)[0], model.eval().predict_all(F4)[0])
    assert not math.isnan(float(loaded.predict_all(F4)[1].sum()))


@pytest.mark.parametrize("lepton", ["none", "direct", "ymatrix"])
@pytest.mark.parametrize("heavies", [True, False])
def test_affine_constraints_equal_reference(lepton: str, heavies: bool) -> None:
    model = _model(conserve_lepton_number=lepton, average_heavies_in_final_state=heavies)
    raw = torch.randn(50, 36, dtype=torch.float64)
    for is_density in (True, False):
        fast = model._y_from_raw(raw, is_density)
        reference = model._constrain_reference(raw, is_density)
        assert torch.allclose(fast, reference, atol=1e-13, rtol=0)


def test_eln_inputs_option() -> None:
    model = _model(do_eln_inputs=True)
    F4 = _F4()
    X = model.X_from_F4(F4)
    assert X.shape == (64, n_inputs(3, True, True)) == (64, 36)
    assert torch.equal(X[:, :27], _model().X_from_F4(F4))
    # G_{e,mu} from the ELN four-vectors: G.G = |F_G|^2 - N_G^2, then -N_G at the end
    Fn = F4 / F4[:, 3].sum(dim=(1, 2))[:, None, None, None]
    eln = Fn[:, :, 0] - Fn[:, :, 1]
    G = eln[:, :, 0] - eln[:, :, 1]
    assert torch.allclose(X[:, 27], (G[:, :3] ** 2).sum(1) - G[:, 3] ** 2, atol=1e-15)
    assert torch.allclose(X[:, -3], -G[:, 3], atol=1e-15)
    rotated = F4.clone()
    rotated[:, :3] = torch.einsum("ij,njsa->nisa", _rotation(4), F4[:, :3])
    assert torch.allclose(model.X_from_F4(rotated), X, atol=1e-12, rtol=0)
    eager = build_model(TrainConfig(do_eln_inputs=True)).eval()
    scripted = torch.jit.script(eager)
    assert torch.equal(scripted.predict_all(F4.float())[0], eager.predict_all(F4.float())[0])

"""The equivariant (e3nn) architecture: conservation, rotations, the exported methods, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import tiny_config, tiny_data

from rhea_engine.config import TrainConfig
from rhea_engine.export import METHODS, export_model, quiet_torchscript, random_physical_F4
from rhea_engine.model import build_model, model_from_checkpoint, n_inputs
from rhea_engine.train import Callbacks, train

pytest.importorskip("e3nn")

SMALL = {"width_shared": 16, "width_stability": 8, "width_growthrate": 8}
SMALL |= {"width_density": 8, "width_flux": 8, "architecture": "equivariant"}


def _model(**changes: object) -> torch.nn.Module:
    torch.manual_seed(2)
    config = TrainConfig(**{**SMALL, **changes})  # type: ignore[arg-type]
    return build_model(config).double().eval()


def _F4(n: int = 100, seed: int = 0) -> torch.Tensor:
    return random_physical_F4(n, seed=seed, dtype=torch.float64)


@pytest.mark.parametrize("lepton", ["none", "direct", "ymatrix"])
@pytest.mark.parametrize("heavies", [True, False])
def test_flavor_summed_number_and_flux_conserved(lepton: str, heavies: bool) -> None:
    model = _model(
        conserve_lepton_number=lepton, average_heavies_in_final_state=heavies, symmetry="box3d"
    )
    F4 = _F4()
    with torch.no_grad():
        F4_final = model.predict_all(F4)[0]
    ntot = F4[:, 3].sum(dim=(1, 2))
    drift = (F4_final.sum(dim=3) - F4.sum(dim=3)).abs().amax(dim=(1, 2)) / ntot
    assert drift.max() < 1e-12
    d_eln = (F4_final[:, 3, 0] - F4_final[:, 3, 1]) - (F4[:, 3, 0] - F4[:, 3, 1])
    eln = float((d_eln.abs() / ntot[:, None]).max())
    if lepton == "none":
        assert eln > 1e-4  # the option matters: nothing else holds the ELN
    else:
        assert eln < 1e-12
    if heavies:  # equal mu and tau rows of y: equal fluxes (N differs by the ELN of the input)
        assert torch.equal(F4_final[:, :3, :, 1], F4_final[:, :3, :, 2])


def test_rotations_reflections_and_scale() -> None:
    model = _model(symmetry="full", average_heavies_in_final_state=False)
    F4 = _F4()
    rng = np.random.default_rng(3)
    with torch.no_grad():
        F4_final, growth, stability = model.predict_all(F4)
        for det_sign in (1.0, -1.0):
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            q = torch.as_tensor(q * det_sign * np.sign(np.linalg.det(q)))
            moved = F4.clone()
            moved[:, :3] = torch.einsum("ij,njsa->nisa", q, F4[:, :3])
            expected = F4_final.clone()
            expected[:, :3] = torch.einsum("ij,njsa->nisa", q, F4_final[:, :3])
            F4_m, growth_m, stability_m = model.predict_all(moved)
            ntot = F4[:, 3].sum(dim=(1, 2))[:, None, None, None]
            assert ((F4_m - expected).abs() / ntot).max() < 1e-12
            torch.testing.assert_close(growth_m, growth, rtol=1e-12, atol=0)
            torch.testing.assert_close(stability_m, stability, rtol=0, atol=1e-12)
        F4_scaled, growth_scaled, _ = model.predict_all(F4 * 1e3)
    torch.testing.assert_close(F4_scaled, F4_final * 1e3, rtol=1e-10, atol=0)
    torch.testing.assert_close(growth_scaled, growth * 1e3, rtol=1e-10, atol=0)


def test_exported_methods_agree_with_each_other() -> None:
    model = _model(symmetry="box3d")
    F4 = _F4(50)
    X = model.X_from_F4(F4)
    assert X.shape == (50, n_inputs(3, True, True, "equivariant")) == (50, 24)
    with torch.no_grad():
        F4_final, growth, stability = model.predict_all(F4)
        y_dens, y_flux, growth_thc = model.predict_WhiskyTHC(F4)
        torch.testing.assert_close(model.F4_from_y(F4, y_dens, y_flux), F4_final)
        torch.testing.assert_close(model.predict_stability(F4), stability)
        torch.testing.assert_close(growth_thc, torch.where(stability > 0.5, 0.0, growth))
        assert model.convert_y_to_2flavor(y_dens).shape == (50, 2, 2, 2, 2)
        logit, _, _, _ = model.forward_train(X[:20], X[20:])
        torch.testing.assert_close(torch.sigmoid(logit), stability[20:])


def test_checkpoint_round_trip() -> None:
    model = _model(symmetry="full", average_heavies_in_final_state=False).float()
    config = TrainConfig(**{**SMALL, "symmetry": "full", "average_heavies_in_final_state": False})
    loaded = model_from_checkpoint({"config": config.to_dict(), "model": model.state_dict()})
    F4 = _F4(20).float()
    with torch.no_grad():
        assert torch.equal(loaded.predict_all(F4)[0], model.predict_all(F4)[0])


def test_export_passes_the_parity_check_and_keeps_the_methods(tmp_path: Path) -> None:
    model = _model(symmetry="box3d").float()
    result = export_model(model, tmp_path / "equivariant.pt", card={"run": {"name": "e"}})
    assert result.parity["max_F4_final_over_ntot"] < 1e-6
    with quiet_torchscript():
        scripted = torch.jit.load(str(result.path))
    for name in METHODS:
        assert hasattr(scripted, name), name
    F4 = random_physical_F4(64, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(scripted.predict_all(F4)[0], model.predict_all(F4)[0])
    # the eager model is left as it was (scripting works on a copy)
    assert type(model.embed).__module__.startswith("e3nn")


class _Losses(Callbacks):
    def __init__(self) -> None:
        self.test_loss: list[float] = []
        self.stability: list[float] = []

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.test_loss.append(metrics["test_loss"])
        self.stability.append(metrics["stability_test_loss"])


def test_tiny_training_learns(tmp_path: Path) -> None:
    config = tiny_config(
        architecture="equivariant",
        symmetry="box3d",
        epochs=6,
        epoch_num_samples=1024,
        batch_size=128,
        width_shared=16,
        do_batchnorm=False,
    )
    losses = _Losses()
    result = train(config, callbacks=losses, checkpoint_dir=tmp_path, data=tiny_data(config, 1500))
    assert losses.test_loss[-1] < 0.8 * losses.test_loss[0]
    assert losses.stability[-1] < 0.9 * losses.stability[0]
    ev = result.evaluation
    assert ev["model_ndens_mean_err"] < 0.8 * ev["identity_ndens_mean_err"]
    assert ev["model_eln_violation"] < 1e-6
    loaded = model_from_checkpoint(torch.load(tmp_path / "last.pt", weights_only=True))
    assert sum(p.numel() for p in loaded.parameters()) == sum(
        p.numel() for p in result.model.parameters()
    )

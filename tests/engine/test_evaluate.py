"""Final evaluation: model beside Box3D and the identity, against hand-computed figures."""

from __future__ import annotations

import numpy as np
import torch
from train_fixtures import physical_sets

from rhea_engine.config import TrainConfig
from rhea_engine.evaluate import evaluate_arrays, final_state_errors, growthrate_log_error
from rhea_engine.model import build_model


def test_evaluation_figures() -> None:
    (F4i, F4f, sigma), (F4s, stable) = physical_sets(600, seed=21)
    model = build_model(TrainConfig(width_shared=8, do_batchnorm=False))
    with torch.no_grad():
        model.stability_head[-1].bias.fill_(40.0)  # predicts "stable" everywhere
    out = evaluate_arrays(model, F4i, F4f, sigma, F4s, stable)
    ntot = F4i[:, 3].sum(axis=(1, 2))
    identity = np.abs(F4i[:, 3] - F4f[:, 3]) / ntot[:, None, None]
    assert np.isclose(out["identity_ndens_mean_err"], identity.mean(), rtol=1e-12)
    assert np.isclose(out["identity_ndens_max_err"], identity.max(), rtol=1e-12)
    assert np.isclose(out["identity_ndens_e_mean_err"], identity[:, :, 0].mean(), rtol=1e-12)
    assert out["identity_eln_violation"] == 0.0
    # the labels are Box3D's own: its errors vanish, it reproduces the rates and classes
    assert out["box3d_ndens_max_err"] < 1e-12 and out["box3d_growthrate_log_err"] < 1e-9
    assert out["box3d_stability_accuracy"] == 1.0
    # a model that calls everything stable scores the stable fraction, as the identity does
    assert np.isclose(out["model_stability_accuracy"], stable.mean())
    assert np.isclose(out["identity_stability_accuracy"], stable.mean())
    assert out["model_eln_violation"] < 1e-6  # direct ELN conservation, float32
    assert out["n_test_asymptotic"] == F4i.shape[0] and out["n_test_stable"] == F4s.shape[0]
    assert all(isinstance(v, float) for v in out.values())


def test_error_helpers() -> None:
    F4 = np.zeros((2, 4, 2, 3))
    F4[:, 3] = 1.0 / 6
    moved = F4.copy()
    moved[0, 3, 0, 0] += 0.1
    moved[0, 3, 0, 1] -= 0.1
    errs = final_state_errors(F4, moved, F4)
    assert np.isclose(errs["ndens_max_err"], 0.1) and np.isclose(errs["eln_violation"], 0.1)
    assert np.isclose(errs["ndens_mean_err"], 0.2 / 12)
    assert np.isclose(growthrate_log_error(np.array([2.0, 0.0]), np.array([1.0, 5.0])), np.log(2.0))
    assert np.isnan(growthrate_log_error(np.array([0.0]), np.array([1.0])))

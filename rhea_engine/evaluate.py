"""Final evaluation on the test split: the model beside Box3D and the identity (no mixing).

All errors are in units of ntot and computed in float64. Returned as one flat dict of
floats, `{who}_{metric}` for who in model, box3d, identity:
ndens_mean_err / ndens_max_err (|dN|/ntot over all species), ndens_e_mean_err (nu_e and
nubar_e only), eln_violation (max |dELN|/ntot), growthrate_log_err (mean |ln sigma_pred -
ln sigma_true| where both are positive), stability_accuracy (on the stability test split;
the identity predicts "stable" everywhere), plus n_test_asymptotic and n_test_stable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rhea_engine.model import FFIModel
from rhea_engine.train_data import TrainingData

CHUNK = 1 << 16


def _predict(model: FFIModel, F4: np.ndarray, device: torch.device) -> tuple[np.ndarray, ...]:
    outs: list[list[np.ndarray]] = [[], [], []]
    with torch.no_grad():
        for start in range(0, F4.shape[0], CHUNK):
            batch = torch.as_tensor(F4[start : start + CHUNK], dtype=torch.float32, device=device)
            for store, value in zip(outs, model.predict_all(batch), strict=True):
                store.append(value.double().cpu().numpy())
    return tuple(np.concatenate(o) if o else np.zeros((0,)) for o in outs)


def final_state_errors(
    F4_initial: np.ndarray, F4_pred: np.ndarray, F4_true: np.ndarray
) -> dict[str, float]:
    ntot = F4_initial[:, 3].sum(axis=(1, 2))
    dN = np.abs(F4_pred[:, 3] - F4_true[:, 3]) / ntot[:, None, None]
    d_eln = (F4_pred[:, 3, 0] - F4_pred[:, 3, 1]) - (F4_initial[:, 3, 0] - F4_initial[:, 3, 1])
    return {
        "ndens_mean_err": float(dN.mean()) if dN.size else float("nan"),
        "ndens_max_err": float(dN.max()) if dN.size else float("nan"),
        "ndens_e_mean_err": float(dN[:, :, 0].mean()) if dN.size else float("nan"),
        "eln_violation": float((np.abs(d_eln) / ntot[:, None]).max()) if dN.size else float("nan"),
    }


def growthrate_log_error(sigma_pred: np.ndarray, sigma_true: np.ndarray) -> float:
    ok = (sigma_pred > 0) & (sigma_true > 0)
    if not ok.any():
        return float("nan")
    return float(np.abs(np.log(sigma_pred[ok]) - np.log(sigma_true[ok])).mean())


def evaluate_arrays(
    model: FFIModel,
    F4_initial: np.ndarray,
    F4_final: np.ndarray,
    growthrate: np.ndarray,
    stable_F4_initial: np.ndarray,
    stable: np.ndarray,
    with_box3d: bool = True,
) -> dict[str, float]:
    """Compare model, Box3D and identity on given test arrays (float64, physical units)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        F4_pred, sigma_pred, _ = _predict(model, F4_initial, device)
        _, _, p_stable = _predict(model, stable_F4_initial, device)
    finally:
        model.train(was_training)
    label = np.asarray(stable) > 0.5
    out: dict[str, Any] = {
        "n_test_asymptotic": float(F4_initial.shape[0]),
        "n_test_stable": float(label.size),
    }
    for key, value in final_state_errors(F4_initial, F4_pred, F4_final).items():
        out[f"model_{key}"] = value
    out["model_growthrate_log_err"] = growthrate_log_error(sigma_pred, growthrate)
    out["model_stability_accuracy"] = (
        float(((p_stable > 0.5) == label).mean()) if label.size else float("nan")
    )
    for key, value in final_state_errors(F4_initial, F4_initial, F4_final).items():
        out[f"identity_{key}"] = value
    out["identity_stability_accuracy"] = float(label.mean()) if label.size else float("nan")
    if with_box3d:
        from rhea_engine.physics import box3d

        box = box3d(F4_initial)
        for key, value in final_state_errors(F4_initial, box.F4_final, F4_final).items():
            out[f"box3d_{key}"] = value
        out["box3d_growthrate_log_err"] = growthrate_log_error(box.growth_rate, growthrate)
        if label.size:
            box_stable = box3d(stable_F4_initial)
            out["box3d_stability_accuracy"] = float(((~box_stable.unstable) == label).mean())
    return {k: float(v) for k, v in out.items()}


def evaluate(model: FFIModel, data: TrainingData, with_box3d: bool = True) -> dict[str, float]:
    """Evaluate on the float64 test arrays kept in `data`."""
    return evaluate_arrays(
        model,
        data.test_F4_initial,
        data.test_F4_final,
        data.test_growthrate,
        data.test_stable_F4_initial,
        data.test_stable,
        with_box3d=with_box3d,
    )

"""Final evaluation on the test split: the model beside Box3D and the identity (no mixing).

All errors are in units of ntot and computed in float64. Returned as one flat dict of
floats, `{who}_{metric}` for who in model, box3d, identity:
ndens_mean_err / ndens_max_err (|dN|/ntot over all species), ndens_e_mean_err (nu_e and
nubar_e only), eln_violation (max |dELN|/ntot), growthrate_log_err (mean |ln sigma_pred -
ln sigma_true| where both are positive), stability_accuracy (on the stability test split;
the identity predicts "stable" everywhere), plus n_test_asymptotic and n_test_stable.

`evaluate_with_distributions` also returns a compact per-sample summary (a few kB, kept in
the run directory as evaluation.json for `rhea plot --kind evaluation`): histograms of
|dN_e|/ntot, the stability confusion matrices and a fixed subsample of growth rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rhea_engine.model import FFIModel
from rhea_engine.runs.rundir import EVALUATION_FORMAT
from rhea_engine.train_data import TrainingData

CHUNK = 1 << 16
# |dN_e|/ntot histogram: 8 decades, 8 bins a decade; values outside land in the end bins
NDENS_E_EDGES = np.logspace(-8.0, 0.0, 65)
GROWTHRATE_SAMPLES = 1000  # points kept for the predicted-vs-true growth-rate scatter


def _predict(model: FFIModel, F4: np.ndarray, device: torch.device) -> tuple[np.ndarray, ...]:
    outs: list[list[np.ndarray]] = [[], [], []]
    with torch.no_grad():
        for start in range(0, F4.shape[0], CHUNK):
            batch = torch.as_tensor(F4[start : start + CHUNK], dtype=torch.float32, device=device)
            for store, value in zip(outs, model.predict_all(batch), strict=True):
                store.append(value.double().cpu().numpy())
    return tuple(np.concatenate(o) if o else np.zeros((0,)) for o in outs)


@dataclass
class EvaluationSplit:
    """The float64 test arrays (physical units) the evaluation compares against."""

    F4_initial: np.ndarray  # [n, 4, 2, NF] asymptotic split
    F4_final: np.ndarray
    growthrate: np.ndarray  # [n] 1/s
    stable_F4_initial: np.ndarray  # [m, 4, 2, NF] stability split
    stable: np.ndarray  # [m] bool, True where the cell is stable


@dataclass
class Predictions:
    """Per-sample predictions of the model, Box3D and the identity on one test split."""

    F4_final: dict[str, np.ndarray]  # who -> [n, 4, 2, NF]
    growthrate: dict[str, np.ndarray]  # model, box3d -> [n] 1/s
    stable: dict[str, np.ndarray]  # who -> [m] bool, predicted stable


def predict(model: FFIModel, split: EvaluationSplit, with_box3d: bool = True) -> Predictions:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        F4_pred, sigma_pred, _ = _predict(model, split.F4_initial, device)
        _, _, p_stable = _predict(model, split.stable_F4_initial, device)
    finally:
        model.train(was_training)
    out = Predictions(
        F4_final={"model": F4_pred, "identity": split.F4_initial},
        growthrate={"model": sigma_pred},
        stable={"model": p_stable > 0.5, "identity": np.ones(split.stable.shape, dtype=bool)},
    )
    if with_box3d:
        from rhea_engine.physics import box3d

        box = box3d(split.F4_initial)
        out.F4_final["box3d"] = box.F4_final
        out.growthrate["box3d"] = box.growth_rate
        if split.stable.size:
            out.stable["box3d"] = ~box3d(split.stable_F4_initial).unstable
    return out


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


def scores(split: EvaluationSplit, pred: Predictions) -> dict[str, float]:
    """The flat `{who}_{metric}` dict described at the top of this module."""
    out: dict[str, float] = {
        "n_test_asymptotic": float(split.F4_initial.shape[0]),
        "n_test_stable": float(split.stable.size),
    }
    for who, F4_pred in pred.F4_final.items():
        for key, value in final_state_errors(split.F4_initial, F4_pred, split.F4_final).items():
            out[f"{who}_{key}"] = value
    for who, sigma in pred.growthrate.items():
        out[f"{who}_growthrate_log_err"] = growthrate_log_error(sigma, split.growthrate)
    for who, stable in pred.stable.items():
        accuracy = (stable == split.stable).mean() if split.stable.size else np.nan
        out[f"{who}_stability_accuracy"] = float(accuracy)
    return out


def distributions(split: EvaluationSplit, pred: Predictions) -> dict[str, Any]:
    """Histograms, confusion matrices and a growth-rate subsample (JSON-ready, a few kB)."""
    ntot = split.F4_initial[:, 3].sum(axis=(1, 2))
    lo, hi = NDENS_E_EDGES[0], NDENS_E_EDGES[-1]
    counts = {}
    for who, F4_pred in pred.F4_final.items():
        error = np.abs(F4_pred[:, 3, :, 0] - split.F4_final[:, 3, :, 0]) / ntot[:, None]
        clipped = np.clip(error.ravel(), lo, np.nextafter(hi, 0.0))
        counts[who] = np.histogram(clipped, bins=NDENS_E_EDGES)[0].tolist()
    matrices = {
        # rows: true stable, true unstable; columns: predicted stable, predicted unstable
        who: [
            [int((split.stable & stable).sum()), int((split.stable & ~stable).sum())],
            [int((~split.stable & stable).sum()), int((~split.stable & ~stable).sum())],
        ]
        for who, stable in pred.stable.items()
    }
    n = split.growthrate.shape[0]
    keep = np.sort(
        np.random.default_rng(0).choice(n, size=min(n, GROWTHRATE_SAMPLES), replace=False)
    )

    def rounded(values: np.ndarray) -> list[float]:
        return [float(f"{v:.5g}") for v in values[keep]]

    return {
        "format": EVALUATION_FORMAT,
        "ndens_e_error": {"edges": NDENS_E_EDGES.tolist(), "counts": counts},
        "stability": {"labels": ["stable", "unstable"], "matrices": matrices},
        "growthrate": {
            "n_test": int(n),
            "true": rounded(split.growthrate),
            **{who: rounded(sigma) for who, sigma in pred.growthrate.items()},
        },
    }


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
    split = EvaluationSplit(
        F4_initial, F4_final, growthrate, stable_F4_initial, np.asarray(stable) > 0.5
    )
    return scores(split, predict(model, split, with_box3d))


def split_of(data: TrainingData) -> EvaluationSplit:
    return EvaluationSplit(
        data.test_F4_initial,
        data.test_F4_final,
        data.test_growthrate,
        data.test_stable_F4_initial,
        np.asarray(data.test_stable) > 0.5,
    )


def evaluate(model: FFIModel, data: TrainingData, with_box3d: bool = True) -> dict[str, float]:
    """Evaluate on the float64 test arrays kept in `data`."""
    split = split_of(data)
    return scores(split, predict(model, split, with_box3d))


def evaluate_with_distributions(
    model: FFIModel, data: TrainingData
) -> tuple[dict[str, float], dict[str, Any]]:
    """`evaluate` plus the per-sample summary `rhea plot` draws, from one set of predictions."""
    split = split_of(data)
    pred = predict(model, split)
    return scores(split, pred), distributions(split, pred)

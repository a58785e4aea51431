"""The final evaluation's per-sample summary agrees with its own numbers and with the physics."""

from __future__ import annotations

import json

import numpy as np
import torch
from train_fixtures import physical_sets

from rhea_engine.config import TrainConfig
from rhea_engine.evaluate import (
    GROWTHRATE_SAMPLES,
    NDENS_E_EDGES,
    EvaluationSplit,
    distributions,
    predict,
    scores,
)
from rhea_engine.model import build_model


def _split(n: int, seed: int) -> EvaluationSplit:
    (F4i, F4f, sigma), (F4s, stable) = physical_sets(n, seed=seed)
    return EvaluationSplit(F4i, F4f, sigma, F4s, stable > 0.5)


def test_distributions_match_the_scores() -> None:
    split = _split(2500, seed=5)
    model = build_model(TrainConfig(width_shared=8, do_batchnorm=False))
    pred = predict(model, split)
    numbers = scores(split, pred)
    summary = json.loads(json.dumps(distributions(split, pred)))  # JSON-ready as it is
    n, m = split.F4_initial.shape[0], split.stable.size
    counts = summary["ndens_e_error"]["counts"]
    assert set(counts) == {"model", "box3d", "identity"}
    # two entries per sample (nu_e and nubar_e), none lost outside the bins
    assert all(sum(c) == 2 * n for c in counts.values())
    assert summary["ndens_e_error"]["edges"] == NDENS_E_EDGES.tolist()
    # the labels are Box3D's own: its errors sit in the lowest bin only
    assert counts["box3d"][0] == 2 * n
    for who, matrix in summary["stability"]["matrices"].items():
        assert sum(map(sum, matrix)) == m
        accuracy = (matrix[0][0] + matrix[1][1]) / m
        assert np.isclose(accuracy, numbers[f"{who}_stability_accuracy"]), who
    identity = summary["stability"]["matrices"]["identity"]
    assert identity[0][1] == identity[1][1] == 0  # the identity calls every cell stable
    box = summary["stability"]["matrices"]["box3d"]
    assert box[0][1] == box[1][0] == 0
    growth = summary["growthrate"]
    assert growth["n_test"] == n
    assert len(growth["true"]) == len(growth["model"]) == len(growth["box3d"])
    assert len(growth["true"]) == min(n, GROWTHRATE_SAMPLES)
    assert np.allclose(growth["box3d"], growth["true"], rtol=1e-4)
    assert len(json.dumps(summary)) < 60_000  # compact: a few tens of kB at most


def test_identity_histogram_is_the_hand_computed_one() -> None:
    split = _split(300, seed=8)
    model = build_model(TrainConfig(width_shared=8, do_batchnorm=False))
    with torch.no_grad():
        summary = distributions(split, predict(model, split, with_box3d=False))
    ntot = split.F4_initial[:, 3].sum(axis=(1, 2))
    error = np.abs(split.F4_initial[:, 3, :, 0] - split.F4_final[:, 3, :, 0]) / ntot[:, None]
    clipped = np.clip(error.ravel(), NDENS_E_EDGES[0], 0.999999)
    expected = np.histogram(clipped, bins=NDENS_E_EDGES)[0]
    assert summary["ndens_e_error"]["counts"]["identity"] == expected.tolist()
    assert "box3d" not in summary["stability"]["matrices"]

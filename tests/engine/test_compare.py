"""Comparison logic: differing parameters, last/best metrics with baselines, down-sampling."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rhea_engine.compare import (
    compare_runs,
    differing_params,
    downsample,
    evaluation_table,
    log_safe,
)
from rhea_engine.config import default_config
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store


def make_run(
    store: Store,
    name: str,
    sweep: str | None,
    lr: float,
    width: int,
    losses: list[float],
    evaluation: dict[str, float] | None = None,
) -> None:
    config = default_config().replace(
        learning_rate=lr,
        **{f"width_{h}": width for h in ("shared", "stability", "growthrate", "density", "flux")},
    )
    row = store.create_run(config, name=name, sweep=sweep)
    with RunWriter(row.path) as writer:
        writer.start(total_epochs=len(losses))
        for epoch, loss in enumerate(losses, start=1):
            writer.epoch(
                epoch,
                {
                    "train_loss": loss,
                    "test_loss": 1.5 * loss,
                    "ELN_violation": 1e-3 * epoch,
                    "learning_rate": lr,
                },
            )
        if evaluation:
            writer.evaluation(evaluation)
        writer.status("completed")


def test_compare_sweep(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        make_run(
            store,
            "s-1",
            "s",
            1e-3,
            32,
            [1.0, 0.5, 0.7],
            {
                "n_test_stable": 100.0,
                "model_ndens_mean_err": 0.2,
                "box3d_ndens_mean_err": 0.01,
                "identity_ndens_mean_err": 0.9,
                "model_stability_accuracy": 0.8,
                "box3d_stability_accuracy": 1.0,
                "identity_stability_accuracy": 0.4,
            },
        )
        make_run(
            store,
            "s-2",
            "s",
            1e-4,
            32,
            [2.0, 1.0, 0.25],
            {
                "model_ndens_mean_err": 0.1,
                "box3d_ndens_mean_err": 0.01,
                "identity_ndens_mean_err": 0.9,
                "model_stability_accuracy": 0.9,
                "box3d_stability_accuracy": 1.0,
                "identity_stability_accuracy": 0.4,
            },
        )
        make_run(store, "other", None, 1e-4, 64, [3.0, math.nan])
        result = compare_runs(store, ["sweep:s", "other"], metric="train_loss")
    assert result["runs"] == ["s-1", "s-2", "other"]
    # only what differs, widths folded into one column because every head agrees
    assert result["params"] == {
        "learning_rate": {"s-1": 1e-3, "s-2": 1e-4, "other": 1e-4},
        "width": {"s-1": 32, "s-2": 32, "other": 64},
    }
    table = {entry["run"]: entry for entry in result["table"]}
    assert table["s-1"]["metric_last"] == 0.7 and table["s-1"]["metric_best"] == 0.5
    assert table["s-1"]["metric_best_epoch"] == 2
    assert table["s-1"]["best_test_loss"] == pytest.approx(0.75)
    assert table["s-2"]["last_test_loss"] == pytest.approx(0.375)
    assert table["s-2"]["max_ELN_violation"] == pytest.approx(3e-3)
    # a non-finite last value does not hide the last finite one
    assert table["other"]["metric_last"] == 3.0
    evaluation = result["evaluation"]
    assert evaluation["quantities"] == ["ndens_mean_err", "stability_accuracy"]
    # one row per run with the model's numbers, the shared baselines once each
    assert [(r["label"], r["values"]["ndens_mean_err"]) for r in evaluation["rows"]] == [
        ("s-1", 0.2),
        ("s-2", 0.1),
        ("Box3D", 0.01),
        ("identity", 0.9),
    ]
    assert table["s-1"]["evaluation"]["box3d_ndens_mean_err"] == 0.01
    assert [e for e, _ in result["series"]["s-1"]["test_loss"]] == [1, 2, 3]


def test_differing_params_unfolds_width_when_heads_differ() -> None:
    a = default_config().to_dict()
    b = {**a, "width_flux": 64}
    params = differing_params({"a": a, "b": b})
    assert params == {"width_flux": {"a": 32, "b": 64}}
    c = {**a, "device": "cuda:1"}  # where a run ran is not a parameter
    assert differing_params({"a": a, "c": c}) == {}


def test_downsample_keeps_extremes_and_ends() -> None:
    series = [(e, 1.0 / e) for e in range(1, 1001)]
    series[500] = (501, 50.0)  # a spike must survive
    series[700] = (701, 1e-9)  # and a dip
    small = downsample(series, 40)
    assert len(small) <= 81
    values = [v for _, v in small]
    assert 50.0 in values and 1e-9 in values
    assert small[0] == series[0] and small[-1] == series[-1]
    assert [e for e, _ in small] == sorted(e for e, _ in small)
    assert downsample(series[:10], 40) == series[:10]
    assert log_safe([(1, 0.0), (2, -1.0), (3, math.inf), (4, 2.0)]) == [(4, 2.0)]


def test_evaluation_table_labels_baselines_per_run_when_test_data_differ() -> None:
    table = evaluation_table(
        {
            "a": {
                "model_eln_violation": 1e-7,
                "box3d_eln_violation": 1e-16,
                "identity_eln_violation": 0.0,
            },
            "b": {
                "model_eln_violation": 2e-7,
                "box3d_eln_violation": 3e-16,
                "identity_eln_violation": 0.0,
            },
            "c": {},
        }
    )
    assert [r["label"] for r in table["rows"]] == ["a", "b", "Box3D (a)", "Box3D (b)", "identity"]


def test_compare_home_refuses_what_would_show_nothing(tmp_path: Path) -> None:
    from rhea_engine.compare import compare_home
    from rhea_engine.errors import RunError, StoreError

    with pytest.raises(StoreError, match="not a Rhea home"):
        compare_home(tmp_path / "nowhere", ["run1"])
    assert not (tmp_path / "nowhere").exists()
    home = tmp_path / "home"
    with Store(home) as store:
        store.create_sweep("empty", {})
        make_run(store, "a", None, 1e-3, 32, [2.0, 1.0])
    with pytest.raises(RunError, match="Nothing to compare: sweep:empty"):
        compare_home(home, ["sweep:empty"])
    with pytest.raises(RunError, match="No run here has the metric 'bogus'.*test_loss"):
        compare_home(home, ["a"], metric="bogus")
    result = compare_home(home, ["a"], width=40)
    assert result["runs"] == ["a"] and [e for e, _ in result["series"]["a"]["test_loss"]] == [1, 2]

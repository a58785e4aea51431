"""`rhea compare`: tables, plots and JSON for runs and sweeps (runs written as a worker would)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.config import default_config
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_tui.cli import app

runner = CliRunner()


def _fill(home: Path) -> None:
    with Store(home) as store:
        store.create_sweep("lr", {})
        for i, lr in enumerate((1e-3, 1e-4), start=1):
            row = store.create_run(
                default_config().replace(learning_rate=lr), name=f"lr-{i}", sweep="lr"
            )
            with RunWriter(row.path) as writer:
                writer.start(total_epochs=20)
                for epoch in range(1, 21):
                    loss = (2.0 + i) / epoch
                    writer.epoch(
                        epoch,
                        {
                            "train_loss": loss,
                            "test_loss": 1.2 * loss,
                            "ELN_violation": 1e-4 / epoch,
                            "ndens_test_loss": 0.1 * loss,
                        },
                    )
                writer.evaluation(
                    {
                        "n_test_stable": 500.0,
                        "model_ndens_mean_err": 0.05 * i,
                        "box3d_ndens_mean_err": 0.002,
                        "identity_ndens_mean_err": 0.06,
                    }
                )
                writer.status("completed")


def test_compare_sweep_tables_and_plots(rhea_home: Path) -> None:
    _fill(rhea_home)
    result = runner.invoke(app, ["compare", "sweep:lr"], env={"COLUMNS": "160"}, color=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "learning_rate" in out and "0.001" in out and "0.0001" in out
    assert "width" not in out.split("Metrics")[0]  # only what differs
    evaluation = out.split("Final evaluation")[1]
    assert "ndens mean err" in evaluation and "Box3D" in evaluation and "identity" in evaluation
    assert "0.002" in evaluation and "0.06" in evaluation
    assert "\x1b" not in out  # plot colours do not leak as raw escape codes into a pipe
    assert "test_loss (log)" in out and "ELN_violation (log)" in out and "train_loss (log)" in out
    assert "lr-1" in out and "lr-2" in out


def test_compare_json_and_metric_choice(rhea_home: Path) -> None:
    _fill(rhea_home)
    result = runner.invoke(
        app, ["compare", "lr-1", "lr-2", "--metric", "ndens_test_loss", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == ["lr-1", "lr-2"]
    assert data["params"] == {"learning_rate": {"lr-1": 1e-3, "lr-2": 1e-4}}
    rows = {r["run"]: r for r in data["table"]}
    assert rows["lr-2"]["metric_best"] == pytest.approx(0.1 * 4.0 / 20)
    assert rows["lr-2"]["metric_best_epoch"] == 20
    assert len(data["series"]["lr-1"]["ndens_test_loss"]) == 20
    assert [r["label"] for r in data["evaluation"]["rows"]] == ["lr-1", "lr-2", "Box3D", "identity"]


def test_compare_errors_exit_2(rhea_home: Path) -> None:
    _fill(rhea_home)
    for args, message in (
        (["lr-1", "nope"], "There is no run 'nope'"),
        (["sweep:missing"], "There is no sweep 'missing'"),
        (["lr-1", "--metric", "bogus"], "metric 'bogus'"),
    ):
        result = runner.invoke(app, ["compare", *args])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())


def test_compare_outside_a_home_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["compare", "run1", "--home", str(tmp_path / "empty")], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2
    assert "not a Rhea home" in " ".join(result.output.split())
    assert not (tmp_path / "empty" / "runs.db").exists()


def _header_cells(out: str) -> list[str]:
    """The column headers of the metrics table."""
    table = out.split("Metrics (chosen")[1]
    header = next(line for line in table.splitlines() if "run" in line and "status" in line)
    return [cell.strip() for cell in header.strip("┃│ ").split("┃") if cell.strip()]


@pytest.mark.parametrize(
    ("metric", "extra"),
    [
        ("test_loss", []),  # `last test` and `best test (epoch)` show it already
        ("train_loss", ["best train_loss"]),  # `last train` shows its last value
        ("ndens_test_loss", ["last ndens_test_loss", "best ndens_test_loss"]),
    ],
)
def test_metrics_table_never_repeats_a_column(
    rhea_home: Path, metric: str, extra: list[str]
) -> None:
    _fill(rhea_home)
    result = runner.invoke(
        app, ["compare", "sweep:lr", "--metric", metric, "--no-plots"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    fixed = ["run", "status", "epochs", "last train", "last test", "best test (epoch)", "max ELN"]
    assert _header_cells(result.output) == fixed + extra


def test_plot_axes_label_small_values_in_scientific_notation(rhea_home: Path) -> None:
    """ELN violations of ~1e-7 read 2.38e-7 on the axis, not 0.000000238; epochs are whole."""
    with Store(rhea_home) as store:
        row = store.create_run(default_config(), name="one-epoch")
        with RunWriter(row.path) as writer:
            writer.start(total_epochs=1)
            writer.epoch(1, {"train_loss": 10.2, "test_loss": 9.42, "ELN_violation": 2.384e-7})
            writer.status("completed")
    result = runner.invoke(app, ["compare", "one-epoch"], env={"COLUMNS": "120"}, color=False)
    assert result.exit_code == 0, result.output
    eln_plot = result.output.split("ELN_violation (log)")[1]
    assert "2.38e-7┤" in eln_plot
    assert "0.0000" not in result.output
    assert "0.50" not in eln_plot and "1.50" not in eln_plot  # no fractional epochs

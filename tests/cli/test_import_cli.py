"""`rhea import`: an upstream sweep folder shows up as a sweep; a malformed file exits 2."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from rhea_engine.runs.store import Store
from rhea_tui.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_import import write_upstream_run  # noqa: E402

runner = CliRunner()


def test_import_group_then_compare(rhea_home: Path, tmp_path: Path) -> None:
    group = tmp_path / "old_lr_sweep"
    write_upstream_run(group / "model_learning_rate_1e-05", 1e-5)
    write_upstream_run(group / "model_learning_rate_5e-06", 5e-6)
    result = runner.invoke(app, ["import", str(group)])
    assert result.exit_code == 0, result.output
    assert "as sweep old_lr_sweep" in " ".join(result.output.split())
    with Store(rhea_home) as store:
        assert [r.name for r in store.list_runs(sweep="old_lr_sweep", status="completed")] == [
            "old_lr_sweep-1",
            "old_lr_sweep-2",
        ]
    compared = runner.invoke(app, ["compare", "sweep:old_lr_sweep", "--json"])
    assert compared.exit_code == 0, compared.output
    assert "learning_rate" in compared.output


def test_import_malformed_exits_2(rhea_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "loss.dat").write_text("1:epoch\t2:train_loss\n1\t0.1\t0.2\n")
    result = runner.invoke(app, ["import", str(folder)], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "loss.dat, line 2" in text and "Traceback" not in result.output
    missing = runner.invoke(app, ["import", str(tmp_path / "nowhere")], env={"COLUMNS": "400"})
    assert missing.exit_code == 2 and "not a directory" in missing.output

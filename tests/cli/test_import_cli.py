"""`rhea import`: an upstream sweep folder shows up as a sweep; a malformed file exits 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from rhea_engine.runs.store import Store
from rhea_tui.cli import app
from rhea_tui.format import cell

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from upstream_format import write_run  # noqa: E402

runner = CliRunner()


def test_import_group_then_compare(rhea_home: Path, tmp_path: Path) -> None:
    group = tmp_path / "old_lr_sweep"
    write_run(group / "model_learning_rate_1e-05", "not-main", 1e-5)
    write_run(group / "model_learning_rate_5e-06", "not-main", 5e-6)
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


def test_show_and_compare_print_what_upstream_main_recorded(
    rhea_home: Path, tmp_path: Path
) -> None:
    group = tmp_path / "trials"
    write_run(group / "a", "main", 1e-3)
    write_run(group / "b", "main", 1e-4)
    # the e3nn irreps of one trial differ: compare shows the upstream parameter
    text = (group / "b" / "parameters.txt").read_text()
    text = text.replace("4x0e+4x1o", "8x0e+8x1o").replace("0x7f8cbbabbe20", "0x7f1111111e20")
    (group / "b" / "parameters.txt").write_text(text)
    assert runner.invoke(app, ["import", str(group)]).exit_code == 0
    shown = runner.invoke(app, ["show", "trials-1"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    out = " ".join(shown.output.split())
    assert "upstream irreps_hidden 4x0e+4x1o" in out and "upstream main" in out
    assert "upstream loader.num_workers 1" in out
    assert "upstream weightedrandomsampler.epoch_num_samples imported as epoch_num_samples" in out
    assert "F4_test_loss" in out and "validation_score" in out and "weight_F4" in out
    assert "stable data/stable_zerofluxfac_database.h5" in out
    assert "upstream TorchScript" in out and "rhea predict FILE" in out
    defaults = out.split("Rhea defaults ", 1)[1].split(": not set upstream", 1)[0].split(", ")
    assert "width_shared" in defaults and "nhidden_flux" in defaults  # main has neither
    assert "learning_rate" not in defaults and "batch_size" not in defaults  # main sets both
    compared = runner.invoke(app, ["compare", "sweep:trials", "--json"])
    params = json.loads(compared.output)["params"]
    assert params["upstream irreps_hidden"] == {"trials-1": "4x0e+4x1o", "trials-2": "8x0e+8x1o"}
    assert "upstream scalar_activation" not in params  # only its memory address differed


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


def test_compare_of_both_branches_prints_every_differing_parameter_readably(
    rhea_home: Path, tmp_path: Path
) -> None:
    write_run(tmp_path / "not_main_run", "not-main", 1e-5)
    write_run(tmp_path / "main_trial", "main", 1e-3)
    for folder in ("not_main_run", "main_trial"):
        assert runner.invoke(app, ["import", str(tmp_path / folder)]).exit_code == 0
    params = json.loads(
        runner.invoke(app, ["compare", "not_main_run", "main_trial", "--json"]).output
    )["params"]
    assert len(params) > 10  # the branches record many different parameters
    # main has no widths nor density/flux depths: no Rhea default is passed off as its choice
    for key in ("width_shared", "width_flux", "nhidden_density", "nhidden_flux"):
        assert params[key] == {"not_main_run": params[key]["not_main_run"], "main_trial": None}
        assert params[key]["not_main_run"] is not None
    assert params["learning_rate"] == {"not_main_run": 1e-5, "main_trial": 1e-3}
    compared = runner.invoke(app, ["compare", "not_main_run", "main_trial"], env={"COLUMNS": "150"})
    assert compared.exit_code == 0, compared.output
    lines = compared.output.splitlines()
    # every differing parameter is named in full on a line that also holds a value of it
    for key, values in params.items():
        shown = [line for line in lines if f"│ {key} " in line]
        assert shown, f"{key} is not shown in full"
        value = next(cell(v) for v in values.values() if v is not None)
        assert value[:8] in shown[0], (key, value, shown[0])

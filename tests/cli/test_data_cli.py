"""`rhea data synth` and `rhea data inspect` through Typer's CliRunner, including bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_tui.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from bad_data_files import CASES  # noqa: E402
from clitext import flat as _flat

runner = CliRunner()


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("synth") / "data"
    result = runner.invoke(app, ["data", "synth", str(directory), "--n", "3000", "--seed", "4"])
    assert result.exit_code == 0, result.output
    return directory


def test_synth_writes_files_and_prints_fractions(synth_dir: Path, tmp_path: Path) -> None:
    assert (synth_dir / "asymptotic.h5").is_file() and (synth_dir / "stable.h5").is_file()
    result = runner.invoke(
        app, ["data", "synth", str(tmp_path / "small"), "--n", "500", "--seed", "4"]
    )
    assert result.exit_code == 0
    out = _flat(result.stdout)
    assert "500 labelled rows" in out and "seed 4" in out
    for family in ("isotropic", "single_species", "skewed", "merger", "random"):
        assert re.search(family + r" \d+ samples \d+\.\d% unstable", out), out
    assert re.search(r"Unstable \d+\.\d%, stable \d+\.\d%", out)


def test_inspect_asymptotic(synth_dir: Path) -> None:
    result = runner.invoke(app, ["data", "inspect", str(synth_dir / "asymptotic.h5")])
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    for phrase in (
        "kind asymptotic",
        "non-finite rows dropped 0",
        "max conservation error",
        "flux factor (initial)",
        "growth rate (1/s)",
        "100.0% unstable",
    ):
        assert phrase in out, out
    info = json.loads(
        runner.invoke(app, ["data", "inspect", "--json", str(synth_dir / "asymptotic.h5")]).stdout
    )
    assert info["kind"] == "asymptotic" and info["max_conservation_error"] < 1e-12
    assert 0 < info["growth_rate_range"][0] <= info["growth_rate_range"][1]
    assert info["flux_factor_initial"][1] <= 0.9 + 1e-12


def test_inspect_stable(synth_dir: Path) -> None:
    info = json.loads(
        runner.invoke(app, ["data", "inspect", "--json", str(synth_dir / "stable.h5")]).stdout
    )
    assert info["kind"] == "stable" and info["rows"] == 3000
    assert 0.3 < info["fraction_stable"] < 0.6
    assert info["fraction_stable"] + info["fraction_unstable"] == pytest.approx(1.0)
    out = _flat(runner.invoke(app, ["data", "inspect", str(synth_dir / "stable.h5")]).stdout)
    assert "kind stable" in out and "rows 3000" in out and "% stable" in out


@pytest.mark.parametrize("case", sorted(CASES))
def test_inspect_bad_files(tmp_path: Path, case: str) -> None:
    writer, phrase = CASES[case]
    path = writer(tmp_path)
    result = runner.invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 2, result.output
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    err = _flat(result.stderr)
    assert "Data error" in err and phrase in err, err


def test_synth_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "f"), "--n", "10"])
    assert result.exit_code == 2 and "not a directory" in _flat(result.stderr)
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "d"), "--n", "0"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "d"), "--seed", "-3"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "d"), "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in _flat(result.stderr)
    assert not (tmp_path / "d").exists()


def test_rhea_help_does_not_import_numerics() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom rhea_tui.cli import app\n"
        "r = CliRunner().invoke(app, ['data', '--help'])\nassert r.exit_code == 0\n"
        "print(sorted(m for m in ('numpy', 'h5py', 'scipy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "h5py" not in out and "scipy" not in out and "torch" not in out


def test_synth_refuses_to_replace_files_a_run_used(tmp_path: Path) -> None:
    from rhea_engine.runs.refresh import refresh
    from rhea_engine.runs.rundir import RunWriter
    from rhea_engine.runs.store import Store

    data = tmp_path / "data"
    assert runner.invoke(app, ["data", "synth", str(data), "--n", "300"]).exit_code == 0
    home = tmp_path / "home"
    with Store(home) as store:
        row = store.create_run({}, name="used-it")
        with RunWriter(row.path) as writer:
            writer.start(data=[{"path": str(data / "asymptotic.h5"), "kind": "asymptotic"}])
        refresh(store)
    before = (data / "asymptotic.h5").read_bytes()
    args = ["data", "synth", str(data), "--n", "300", "--seed", "9", "--home", str(home)]
    refused = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert refused.exit_code == 2, refused.output
    out = _flat(refused.output)
    assert "Not overwriting" in out and "used by used-it" in out and "--force" in out
    assert (data / "asymptotic.h5").read_bytes() == before
    forced = runner.invoke(app, [*args, "--force"], env={"COLUMNS": "300"})
    assert forced.exit_code == 0, forced.output
    assert "Replaced files that runs of this home used" in _flat(forced.output)
    assert "used-it" in _flat(forced.output)
    assert (data / "asymptotic.h5").read_bytes() != before


def test_inspect_counts_fluxes_below_float32_and_synth_can_avoid_them(tmp_path: Path) -> None:
    for name, extra in (("plain", []), ("raised", ["--min-flux-factor", "1e-6"])):
        args = ["data", "synth", str(tmp_path / name), "--n", "3000", "--seed", "4", *extra]
        assert runner.invoke(app, args).exit_code == 0
    plain = json.loads(
        runner.invoke(app, ["data", "inspect", "--json", str(tmp_path / "plain/stable.h5")]).stdout
    )
    raised = json.loads(
        runner.invoke(app, ["data", "inspect", "--json", str(tmp_path / "raised/stable.h5")]).stdout
    )
    assert plain["rows_flux_below_float32"] > 0 and raised["rows_flux_below_float32"] == 0
    text = _flat(runner.invoke(app, ["data", "inspect", str(tmp_path / "plain/stable.h5")]).stdout)
    assert f"flux below float32 {plain['rows_flux_below_float32']} rows" in text
    assert "--min-flux-factor" in text

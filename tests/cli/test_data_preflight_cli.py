"""A data file training cannot read is refused before a run exists: `rhea run` and `rhea sweep`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from clitext import flat
from typer.testing import CliRunner

from rhea_tui.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from bad_data_files import CASES  # noqa: E402

runner = CliRunner()
# Files that are HDF5 of a recognisable kind: only a look at their datasets and rows finds
# what is wrong (the cases before these are refused by the file-level checks).
CONTENT_CASES = sorted(
    set(CASES) - {"not_hdf5", "empty_file", "empty_hdf5", "does_not_exist", "directory"}
)


def _data_args(case: str, bad: Path, tiny_data: tuple[Path, Path]) -> list[str]:
    asymptotic, stable = tiny_data
    if case == "bad_labels":
        return ["--data", str(asymptotic), "--stable-data", str(bad)]
    return ["--data", str(bad), "--stable-data", str(stable)]


def _home_contents(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_refuses_a_bad_file_before_creating_anything(
    rhea_home: Path, tmp_path: Path, tiny_data: tuple[Path, Path], case: str
) -> None:
    writer, phrase = CASES[case]
    bad = writer(tmp_path)
    args = ["run", *_data_args(case, bad, tiny_data), "--epochs", "1", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    if case in CONTENT_CASES:
        assert phrase in flat(result.output), result.output
    assert _home_contents(rhea_home) == []  # no runs.db, no run directory, no worker


@pytest.mark.parametrize("case", ["all_nonfinite", "not_conserving", "bad_labels"])
def test_sweep_refuses_a_bad_file_before_creating_anything(
    rhea_home: Path, tmp_path: Path, tiny_data: tuple[Path, Path], case: str
) -> None:
    writer, phrase = CASES[case]
    bad = writer(tmp_path)
    args = ["sweep", "--lr", "1e-3,1e-4", *_data_args(case, bad, tiny_data), "--epochs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert phrase in flat(result.output) and "Traceback" not in result.output
    assert _home_contents(rhea_home) == []


def test_run_refuses_files_with_another_number_of_flavors(
    rhea_home: Path, tiny_data: tuple[Path, Path]
) -> None:
    asymptotic, stable = tiny_data
    args = ["run", "--data", str(asymptotic), "--stable-data", str(stable), "--set", "NF=2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "holds NF = 3 flavors, but the config asks for NF = 2" in flat(result.output)
    assert _home_contents(rhea_home) == []

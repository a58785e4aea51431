"""`rhea export` and `rhea predict` through Typer's CliRunner, including every bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rhea_engine.export import random_physical_F4
from rhea_tui.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from clitext import flat as _flat
from export_fixtures import make_run  # noqa: E402

runner = CliRunner()


@pytest.fixture
def home(rhea_home: Path) -> Path:
    make_run(rhea_home)
    return rhea_home


def _export(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["export", "tiny", "--home", str(home), *args])
    return result.exit_code, _flat(result.output)


def test_export_prints_paths_and_largest_difference(home: Path, tmp_path: Path) -> None:
    code, out = _export(home, "--cpu", "--epoch", "5", "-o", str(tmp_path / "m.pt"))
    assert code == 0, out
    assert "Exported epoch 5 of run 'tiny' as torchscript (cpu, not-main layout)" in out
    assert re.search(
        r"largest difference from the trained model on 4096 random physical cells: "
        r"F4_final \S+ of ntot, growth rate \S+ relative, stability \S+",
        out,
    )
    assert (tmp_path / "m.pt").is_file()
    card = json.loads((tmp_path / "m.pt.card.json").read_text())
    assert card["checkpoint"]["epoch"] == 5 and card["run"]["name"] == "tiny"
    assert "deprecated" not in out


def test_predict_nsm1_shows_model_beside_emu(home: Path, tmp_path: Path) -> None:
    assert _export(home, "-o", str(tmp_path / "m.pt"))[0] == 0
    result = runner.invoke(app, ["predict", str(tmp_path / "m.pt"), "--nsm1"])
    out = _flat(result.output)
    assert result.exit_code == 0, out
    assert re.search(r"stability \(probability stable\): 0\.\d{4}", out)
    assert re.search(r"growth rate: \d\.\d{4}e\+\d\d 1/s", out)
    assert "nu_e 1.4220e+33" in out and "9.9546e+32" in out and "1.4881e+33" in out


def test_predict_input_file(home: Path, tmp_path: Path) -> None:
    assert _export(home, "-o", str(tmp_path / "m.pt"))[0] == 0
    from rhea_engine.export import random_physical_F4

    source = tmp_path / "cells.h5"
    with h5py.File(source, "w") as h5:
        h5["F4_initial(1|ccm)"] = random_physical_F4(250, seed=2, dtype=torch.float64).numpy()
    result = runner.invoke(app, ["predict", str(tmp_path / "m.pt"), "--input", str(source)])
    assert result.exit_code == 0, result.output
    target = tmp_path / "cells_predicted.h5"
    assert f"Wrote predictions for 250 cells to {target}" in _flat(result.output)
    with h5py.File(target, "r") as h5:
        assert h5["F4_final(1|ccm)"].shape == (250, 4, 2, 3)
        assert np.isfinite(h5["growthRate(1|s)"][...]).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epoch", "7"], "no checkpoint of epoch 7. Epochs with a checkpoint: 5, 10"),
        (["--best", "--epoch", "5"], "either --best or --epoch N, not both"),
        (["--format", "aoti", "-o", "model.pt"], "must be named *.pt2"),
    ],
)
def test_export_bad_requests(home: Path, args: list[str], message: str) -> None:
    code, out = _export(home, *args)
    assert code == 2 and message in out and "Traceback" not in out


def test_export_run_without_checkpoint_or_unknown(home: Path) -> None:
    make_run(home, name="fresh", epochs=(), best_epoch=None)
    result = runner.invoke(app, ["export", "fresh", "--home", str(home)])
    assert result.exit_code == 2 and "has no checkpoint to export yet" in _flat(result.output)
    result = runner.invoke(app, ["export", "nosuch", "--home", str(home)])
    assert result.exit_code == 2 and "There is no run 'nosuch'" in _flat(result.output)


def test_export_unwritable_output(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    code, out = _export(home, "-o", str(blocker / "m.pt"))
    assert code == 2 and "Cannot create the folder" in out
    code, out = _export(home, "-o", str(tmp_path))
    assert code == 2 and "it is a directory" in out


def test_predict_bad_inputs(home: Path, tmp_path: Path) -> None:
    assert _export(home, "-o", str(tmp_path / "m.pt"))[0] == 0
    model = str(tmp_path / "m.pt")
    checkpoint = str(home / "runs" / "tiny" / "checkpoints" / "last.pt")
    result = runner.invoke(app, ["predict", checkpoint, "--nsm1"])
    assert result.exit_code == 2 and "is not an FFI model Rhea can use" in _flat(result.output)
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as h5:
        h5["F4_initial(1|ccm)"] = np.ones((5, 3, 2, 3))
    result = runner.invoke(
        app, ["predict", model, "--input", str(wrong), "-o", str(tmp_path / "o.h5")]
    )
    assert result.exit_code == 2 and "must have shape [N, 4, 2, 3]" in _flat(result.output)
    assert not (tmp_path / "o.h5").exists()
    for args in ([model], [model, "--nsm1", "--input", str(wrong)]):
        result = runner.invoke(app, ["predict", *args])
        assert result.exit_code == 2 and "exactly one of --nsm1 or --input" in _flat(result.output)


def _evil_package(package: Path, target: Path, tmp_path: Path) -> Path:
    """`package` with its shared library replaced by one whose constructor leaves a file."""
    import shutil
    import subprocess
    import zipfile

    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the hostile package")
    source = tmp_path / "evil.c"
    source.write_text(
        "#include <stdio.h>\n#include <stdlib.h>\n"
        "__attribute__((constructor)) static void mark(void) {\n"
        '  const char *p = getenv("RHEA_TEST_MARKER");\n'
        '  if (p) { FILE *f = fopen(p, "w"); if (f) { fputs("ran", f); fclose(f); } }\n}\n'
    )
    library = tmp_path / "evil.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(target, "w") as out:
        for info in src.infolist():
            data = library.read_bytes() if info.filename.endswith(".so") else src.read(info)
            out.writestr(info, data)
    return target


def test_aoti_export_and_predict(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One small model through AOTInductor (compiles C++; about 20-40 s on a quiet machine).

    A package this home exported loads; any other needs --trust-native-code, because opening
    one runs the native code inside it; the extracted files never stay behind.
    """
    assert _export(home, "-o", str(tmp_path / "m.pt"))[0] == 0
    code, out = _export(home, "--format", "aoti", "-o", str(tmp_path / "m.pt2"))
    assert code == 0, out
    assert "as aoti (cpu" in out
    card = json.loads((tmp_path / "m.pt2.card.json").read_text())
    assert card["format"] == "aoti" and card["parity"]["max_F4_final_over_ntot"] < 1e-5
    # the TorchScript export of the same stem keeps its own card
    assert json.loads((tmp_path / "m.pt.card.json").read_text())["format"] == "torchscript"
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    result = runner.invoke(app, ["predict", str(tmp_path / "m.pt2"), "--nsm1", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "growth rate:" in _flat(result.output)
    from rhea_engine.predict import load_exported

    loaded = load_exported(tmp_path / "m.pt2", home=home)
    assert loaded.predict_all(random_physical_F4(3, dtype=torch.float64).numpy())[0].shape == (
        3,
        4,
        2,
        3,
    )
    assert list(scratch.iterdir()) == []  # nothing extracted is left, even while loaded
    other_home = tmp_path / "other"
    other_home.mkdir()
    copy = tmp_path / "copy.pt2"
    copy.write_bytes((tmp_path / "m.pt2").read_bytes())
    refused = runner.invoke(app, ["predict", str(copy), "--nsm1", "--home", str(other_home)])
    assert refused.exit_code == 2 and "--trust-native-code" in _flat(refused.output)
    trusted = ["predict", str(copy), "--nsm1", "--home", str(other_home), "--trust-native-code"]
    assert runner.invoke(app, trusted).exit_code == 0
    evil = _evil_package(tmp_path / "m.pt2", tmp_path / "evil.pt2", tmp_path)
    marker = tmp_path / "marker"
    monkeypatch.setenv("RHEA_TEST_MARKER", str(marker))
    refused = runner.invoke(app, ["predict", str(evil), "--nsm1", "--home", str(home)])
    assert refused.exit_code == 2 and "Untrusted native code" in _flat(refused.output)
    assert not marker.exists()  # the hostile library was never opened
    assert list(scratch.iterdir()) == []

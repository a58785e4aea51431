"""Export: TorchScript keeps the upstream methods, parity with the eager model, the model card."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from export_fixtures import DATA, eager_model, make_run

from rhea_engine.errors import ExportError, UnknownRunError
from rhea_engine.export import (
    METHODS,
    compare_predictions,
    export_run,
    quiet_torchscript,
    random_physical_F4,
    resolve_checkpoint,
)
from rhea_engine.physics.units import NDENS_TO_INVSEC


@pytest.fixture
def run_path(rhea_home: Path) -> Path:
    return make_run(rhea_home)


def test_random_inputs_are_physical() -> None:
    F4 = random_physical_F4(5000, seed=1, dtype=torch.float64)
    N = F4[:, 3]
    flux = F4[:, :3].norm(dim=1)
    ntot = N.sum(dim=(1, 2))
    assert F4.shape == (5000, 4, 2, 3)
    assert (N > 0).all() and (flux <= N).all()
    assert ntot.min() >= 1e30 and ntot.max() <= 1e35
    assert ntot.log10().std() > 1  # spans decades, as merger data do


def test_torchscript_keeps_upstream_methods_and_matches_eager(
    rhea_home: Path, run_path: Path
) -> None:
    result = export_run(rhea_home, "tiny", epoch=5, cpu=True)
    with quiet_torchscript():
        scripted = torch.jit.load(str(result.path))
    eager = eager_model(run_path, 5)
    for name in METHODS:
        assert hasattr(scripted, name), name
    F4 = random_physical_F4(300, seed=9)
    with torch.inference_mode():
        for got, want in zip(scripted.predict_all(F4), eager.predict_all(F4), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
        y_dens, y_flux, growth = scripted.predict_WhiskyTHC(F4)
        assert y_dens.shape == (300, 2, 3, 2, 3) and growth.shape == (300,)
        torch.testing.assert_close(
            scripted.F4_from_y(F4, y_dens, y_flux), eager.F4_from_y(F4, y_dens, y_flux)
        )
        torch.testing.assert_close(scripted.X_from_F4(F4), eager.X_from_F4(F4))
        assert scripted.convert_y_to_2flavor(y_dens).shape == (300, 2, 2, 2, 2)
        torch.testing.assert_close(scripted.predict_stability(F4), eager.predict_all(F4)[2])
    # the epoch-10 weights differ, so the export really took epoch 5
    other = eager_model(run_path, 10)
    with torch.inference_mode():
        assert not torch.allclose(other.predict_all(F4)[2], scripted.predict_all(F4)[2])
    assert result.parity["max_F4_final_over_ntot"] <= 1e-6


def _reject_constant(name: str) -> None:
    raise AssertionError(f"the model card holds {name}, which strict JSON readers reject")


def test_model_card_describes_the_export(rhea_home: Path, run_path: Path) -> None:
    result = export_run(rhea_home, "tiny", best=True, cpu=True)
    card = json.loads(result.card_path.read_text(), parse_constant=_reject_constant)  # strict JSON
    assert card["metrics"]["evaluation"]["model_growth_err"] is None  # NaN: never measured
    assert result.card_path == result.path.with_name(result.path.name + ".card.json")
    assert card["run"]["name"] == "tiny" and card["checkpoint"]["epoch"] == 5
    assert card["checkpoint"]["path"].endswith("best.pt")
    assert card["config"]["width_shared"] == 32 and card["config"]["NF"] == 3
    assert [d["sha256"] for d in card["data"]] == [d["sha256"] for d in DATA]
    assert card["metrics"]["evaluation"]["model_ndens_rmse"] == pytest.approx(0.01)
    assert card["growth_rate_constant"]["value"] == NDENS_TO_INVSEC
    assert card["versions"]["torch"] == torch.__version__
    assert card["format"] == "torchscript" and card["device"] == "cpu"
    import hashlib

    assert card["file"]["sha256"] == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert card["parity"]["cells"] >= 1000


def test_default_output_is_latest_checkpoint_in_the_run(rhea_home: Path, run_path: Path) -> None:
    result = export_run(rhea_home, "tiny")
    assert result.epoch == 10
    assert result.path == run_path / "exports" / "tiny_epoch00010_cpu.pt"
    assert result.path.is_file() and result.card_path.is_file()
    assert not list(result.path.parent.glob(".*tmp*"))  # no temporary folder left


def test_cpu_export_loads_with_cuda_hidden(rhea_home: Path, run_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cpu_model.pt"
    export_run(rhea_home, "tiny", cpu=True, output=out)
    code = (
        "import torch, sys; m = torch.jit.load(sys.argv[1]); "
        "assert not torch.cuda.is_available(); "
        "print(sorted({str(p.device) for p in m.parameters()}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['cpu']"


def test_export_prints_no_torchscript_deprecation_noise(rhea_home: Path, run_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_run(rhea_home, "tiny", cpu=True)
    noisy = [str(w.message) for w in caught if "deprecated" in str(w.message)]
    assert noisy == []
    # ... while the filter is narrow: other warnings still reach the user afterwards
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("something else is deprecated", DeprecationWarning, stacklevel=1)
    assert len(caught) == 1


def test_parity_check_detects_a_different_model(run_path: Path) -> None:
    F4 = random_physical_F4(2000, seed=4)
    with torch.inference_mode():
        a = eager_model(run_path, 5).predict_all(F4)
        b = eager_model(run_path, 10).predict_all(F4)
    same = compare_predictions(F4, a, a)
    differ = compare_predictions(F4, a, b)
    assert same["max_F4_final_over_ntot"] == 0.0
    assert differ["max_F4_final_over_ntot"] > 1e-3 and differ["max_abs_stability"] > 1e-3
    from rhea_engine.export import _check_parity

    _check_parity(same, Path("m.pt"))
    with pytest.raises(ExportError, match="disagrees"):
        _check_parity(differ, Path("m.pt"))


def test_checkpoint_choice(run_path: Path) -> None:
    assert resolve_checkpoint(run_path, epoch=10).name == "epoch_00010.pt"
    assert resolve_checkpoint(run_path, best=True).name == "best.pt"
    assert resolve_checkpoint(run_path).name in ("last.pt", "epoch_00010.pt")
    with pytest.raises(
        ExportError, match=r"no checkpoint of epoch 7\. Epochs with a checkpoint: 5, 10"
    ):
        resolve_checkpoint(run_path, epoch=7)
    with pytest.raises(ExportError, match="not both"):
        resolve_checkpoint(run_path, best=True, epoch=5)


def test_bad_requests_are_clear_errors(rhea_home: Path, run_path: Path, tmp_path: Path) -> None:
    make_run(rhea_home, name="empty", epochs=(), best_epoch=None)
    with pytest.raises(ExportError, match="no checkpoint to export yet"):
        export_run(rhea_home, "empty")
    with pytest.raises(ExportError, match="no best checkpoint"):
        export_run(rhea_home, "empty", best=True)
    with pytest.raises(UnknownRunError):
        export_run(rhea_home, "nosuchrun")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="Cannot create the folder"):
        export_run(rhea_home, "tiny", output=blocker / "model.pt")
    with pytest.raises(ExportError, match="is a directory"):
        export_run(rhea_home, "tiny", output=tmp_path)
    with pytest.raises(ExportError, match=r"\*\.pt2"):
        export_run(rhea_home, "tiny", fmt="aoti", output=tmp_path / "model.pt")
    assert not list(tmp_path.glob("*.pt*"))


def test_export_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU cannot run here: CUDA's presence is mocked, the choice itself is real."""
    from rhea_engine.export import _export_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _export_device(False, "cuda:1") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _export_device(True, "cuda") == "cpu"
    assert _export_device(False, "cpu") == "cpu"
    assert _export_device(False, "auto") == "cuda"
    assert _export_device(False, "cuda:1") == "cuda:1"
    assert _export_device(False, "cuda:5") == "cuda"  # trained on a GPU this node lacks

"""Predictions with exported models: loading checks, the NSM1 cell, whole HDF5 files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from export_fixtures import eager_model, make_run

from rhea_engine.errors import DataError, ExportError
from rhea_engine.export import export_run, random_physical_F4
from rhea_engine.predict import (
    NSM1_EMU_N,
    load_exported,
    nsm1_F4,
    predict_file,
    predict_nsm1,
)


@pytest.fixture
def exported(rhea_home: Path, tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    run_path = make_run(rhea_home)
    out = export_run(rhea_home, "tiny", epoch=10, cpu=True, output=tmp_path / "model.pt").path
    return out, eager_model(run_path, 10)


def test_exported_archive_is_named_after_the_file(exported: tuple[Path, torch.nn.Module]) -> None:
    import zipfile

    with zipfile.ZipFile(exported[0]) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {"model"}
    assert load_exported(exported[0]).card["checkpoint"]["epoch"] == 10  # the card inside


def test_nsm1_cell_matches_the_published_case() -> None:
    F4 = nsm1_F4()
    N = F4[0, 3]
    assert F4.shape == (1, 4, 2, 3)
    assert N.sum() == pytest.approx(14.22e32 + 19.15e32 + 19.65e32, rel=1e-12)
    np.testing.assert_allclose(F4[0, :3, 1, 0] / N[1, 0], [0.0723, 0.0313, -0.3446])
    np.testing.assert_allclose(F4[0, :3, 0, 2] / N[0, 2], [-0.0216, 0.0743, -0.5354])
    assert (np.linalg.norm(F4[0, :3], axis=0) < N).all()


def test_predict_nsm1_uses_the_model(exported: tuple[Path, torch.nn.Module]) -> None:
    path, eager = exported
    result = predict_nsm1(load_exported(path))
    with torch.inference_mode():
        F4_final, growth, stability = eager.predict_all(
            torch.as_tensor(nsm1_F4(), dtype=torch.float32)
        )
    np.testing.assert_allclose(result.F4_final, F4_final.double().numpy(), rtol=1e-6)
    assert result.growthrate == pytest.approx(float(growth[0]), rel=1e-6)
    assert result.stability == pytest.approx(float(stability[0]), abs=1e-7)
    np.testing.assert_array_equal(result.emu_N, np.asarray(NSM1_EMU_N))
    # flavor-summed densities of nu and of nubar are conserved by construction
    np.testing.assert_allclose(
        result.F4_final[0, 3].sum(axis=1), nsm1_F4()[0, 3].sum(axis=1), rtol=1e-5
    )
    assert result.box3d_growthrate == pytest.approx(4.820e10, rel=1e-2)


def test_predict_file_writes_every_row(
    exported: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    path, eager = exported
    F4 = random_physical_F4(700, seed=5, dtype=torch.float64).numpy()
    F4[3, 0, 0, 0] = np.nan  # a damaged row gets NaN predictions, the others are kept
    source = tmp_path / "cells.h5"
    with h5py.File(source, "w") as h5:
        h5["F4_initial(1|ccm)"] = F4
        h5["nf"] = 3
    target, rows, skipped = predict_file(load_exported(path), source, tmp_path / "out" / "pred.h5")
    assert (rows, skipped) == (700, 1)
    with h5py.File(target, "r") as h5:
        F4_final = h5["F4_final(1|ccm)"][...]
        growth = h5["growthRate(1|s)"][...]
        stability = h5["stability"][...]
        stable = h5["stable"][...]
        np.testing.assert_array_equal(h5["F4_initial(1|ccm)"][...], F4)
    keep = np.arange(700) != 3
    with torch.inference_mode():
        want = eager.predict_all(torch.as_tensor(F4[keep], dtype=torch.float32))
    np.testing.assert_allclose(F4_final[keep], want[0].double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(growth[keep], want[1].double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(stability[keep], want[2].double().numpy(), atol=1e-7)
    assert np.isnan(F4_final[3]).all() and np.isnan(growth[3]) and np.isnan(stable[3])
    np.testing.assert_array_equal(stable[keep], (stability[keep] > 0.5).astype(float))


def test_wrong_inputs_are_data_errors(
    exported: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    model = load_exported(exported[0])
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as h5:
        h5["F4_initial(1|ccm)"] = np.ones((10, 4, 2, 2))
    with pytest.raises(DataError, match=r"must have shape \[N, 4, 2, 3\].*\[10, 4, 2, 2\]"):
        predict_file(model, wrong, tmp_path / "out.h5")
    missing = tmp_path / "missing.h5"
    with h5py.File(missing, "w") as h5:
        h5["something"] = np.ones(3)
    with pytest.raises(DataError, match="no dataset 'F4_initial"):
        predict_file(model, missing, tmp_path / "out.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5"):
        predict_file(model, text, tmp_path / "out.h5")
    with pytest.raises(DataError, match="must differ"):
        predict_file(model, wrong, wrong)
    assert not (tmp_path / "out.h5").exists()


def test_files_that_are_not_rhea_models(tmp_path: Path, rhea_home: Path) -> None:
    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    from rhea_engine.export import quiet_torchscript

    foreign = tmp_path / "foreign.pt"
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(Other()), str(foreign))
    with pytest.raises(ExportError, match="not an FFI model Rhea can use.*lacks the method"):
        load_exported(foreign)
    run_path = make_run(rhea_home)
    with pytest.raises(ExportError, match="saved with torch.save.*must be exported first"):
        load_exported(run_path / "checkpoints" / "last.pt")
    import zipfile

    fake = tmp_path / "fake.pt2"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("fake/readme.txt", "hello")
    with pytest.raises(ExportError, match="not an AOTInductor package"):
        load_exported(fake)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ExportError, match="not a TorchScript or AOTInductor archive"):
        load_exported(text)
    with pytest.raises(ExportError, match="does not exist"):
        load_exported(tmp_path / "absent.pt")

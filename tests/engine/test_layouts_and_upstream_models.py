"""Export layouts (not-main, main) and predictions with upstream-style TorchScript files.

The upstream-style files are made here: modules with the interface of upstream not-main's
models (single-cell outputs squeezed to 0-d, no model card) and of upstream main's models
(predict_all on [N, 2, NF, 4], growth rate in cm^-3, no X_from_F4), saved with torch.jit.save.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from export_fixtures import eager_model, make_run

from rhea_engine.checkpoint import load_checkpoint
from rhea_engine.errors import RunError
from rhea_engine.export import CARD_ENTRY, export_run, quiet_torchscript, random_physical_F4
from rhea_engine.layouts import MainLayout, to_layout
from rhea_engine.physics.units import NDENS_TO_INVSEC
from rhea_engine.predict import ModelFileError, load_exported, nsm1_F4, predict_file, predict_nsm1


class SqueezedOutputs(torch.nn.Module):
    """Upstream not-main's interface: growth rate and stability squeezed (0-d for one cell)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.NF = 3

    @torch.jit.export
    def predict_all(self, F4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        F4_final, growth, stability = self.model.predict_all(F4)
        return F4_final, torch.squeeze(growth), torch.squeeze(stability)

    @torch.jit.export
    def X_from_F4(self, F4: torch.Tensor) -> torch.Tensor:
        return self.model.X_from_F4(F4)

    def forward(self, F4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.predict_all(F4)


def _save(module: torch.nn.Module, path: Path, card: str | None = None) -> Path:
    with quiet_torchscript():
        extra = {CARD_ENTRY: card} if card is not None else {}
        torch.jit.save(torch.jit.script(module), str(path), _extra_files=extra)
    return path


@pytest.fixture
def run_path(rhea_home: Path) -> Path:
    return make_run(rhea_home)


def _eager(run_path: Path, F4: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return eager_model(run_path, 10).predict_all(F4)


def test_export_in_both_layouts_matches_the_trained_model(
    rhea_home: Path, run_path: Path, tmp_path: Path
) -> None:
    F4 = random_physical_F4(500, seed=21)
    eager = _eager(run_path, F4)
    for layout in ("not-main", "main"):
        out = tmp_path / f"{layout}.pt"
        result = export_run(rhea_home, "tiny", epoch=10, cpu=True, output=out, layout=layout)
        assert result.layout == layout and result.parity["max_rel_growthrate"] < 1e-5
        assert result.parity["max_F4_final_over_ntot"] < 1e-5
        card = json.loads(result.card_path.read_text())
        assert result.card_path.name == f"{layout}.pt.card.json"
        assert card["layout"] == layout
        with quiet_torchscript():
            module = torch.jit.load(str(out))
        with torch.inference_mode():
            F4_final, growth, stability = module.predict_all(to_layout(F4, layout))
        if layout == "main":
            assert (
                card["input"]["shape"] == "[N, 2, 3, 4]"
                and "cm^-3" in card["outputs"]["growthrate"]
            )
            assert module.rhea_layout == "main"
            assert F4_final.shape == (500, 2, 3, 4)
            F4_final = F4_final.permute(0, 3, 1, 2)
            growth = growth * NDENS_TO_INVSEC
        else:
            assert (
                card["input"]["shape"] == "[N, 4, 2, 3]"
                and card["outputs"]["growthrate"] == "[N] 1/s"
            )
        ntot = F4[:, 3].sum(dim=(1, 2))
        assert ((F4_final - eager[0]).abs().amax(dim=(1, 2, 3)) / ntot).max() < 1e-6
        torch.testing.assert_close(growth, eager[1], rtol=1e-5, atol=0)
        torch.testing.assert_close(stability, eager[2])


def test_main_layout_export_takes_upstream_main_input_shapes(
    rhea_home: Path, run_path: Path, tmp_path: Path
) -> None:
    """Main's consumers build one cell as [1, 2, 3, 4] and also pass [N, 2, 3, 4] batches."""
    out = export_run(rhea_home, "tiny", cpu=True, output=tmp_path / "m.pt", layout="main").path
    with quiet_torchscript():
        module = torch.jit.load(str(out))
    cell = to_layout(torch.as_tensor(nsm1_F4(), dtype=torch.float32), "main")
    F4_final, growth, stability = module.predict_all(cell)
    assert F4_final.shape == (1, 2, 3, 4) and growth.shape == (1,) and stability.shape == (1,)
    # flavor-summed number of nu and of nubar is conserved, read in main's layout
    torch.testing.assert_close(F4_final[0, :, :, 3].sum(dim=1), cell[0, :, :, 3].sum(dim=1))
    folded = module.convert_y_to_2flavor(F4_final)
    assert folded.shape == (1, 2, 2, 4)
    torch.testing.assert_close(folded[:, :, 1], F4_final[:, :, 1:].sum(dim=2))


def test_predict_reads_a_main_layout_export(
    rhea_home: Path, run_path: Path, tmp_path: Path
) -> None:
    out = export_run(rhea_home, "tiny", epoch=10, cpu=True, output=tmp_path / "m.pt", layout="main")
    model = load_exported(out.path)
    assert model.layout == "main" and model.origin == "rhea"
    result = predict_nsm1(model)
    eager = _eager(run_path, torch.as_tensor(nsm1_F4(), dtype=torch.float32))
    np.testing.assert_allclose(result.F4_final, eager[0].double().numpy(), rtol=1e-5)
    assert result.growthrate == pytest.approx(float(eager[1][0]), rel=1e-5)


def test_upstream_not_main_file_single_cell_and_file_input(run_path: Path, tmp_path: Path) -> None:
    eager = eager_model(run_path, 10)
    path = _save(SqueezedOutputs(eager), tmp_path / "model5_cpu.pt")
    model = load_exported(path)
    assert (model.layout, model.origin) == ("not-main", "upstream")
    assert "upstream TorchScript model" in model.describe()
    result = predict_nsm1(model)  # one cell: 0-d growth rate and stability
    with torch.inference_mode():
        want = eager.predict_all(torch.as_tensor(nsm1_F4(), dtype=torch.float32))
    assert result.growthrate == pytest.approx(float(want[1][0]), rel=1e-6)
    assert result.stability == pytest.approx(float(want[2][0]), abs=1e-7)
    import h5py

    source = tmp_path / "cells.h5"
    with h5py.File(source, "w") as h5:
        h5["F4_initial(1|ccm)"] = random_physical_F4(7, seed=2, dtype=torch.float64).numpy()
    target, rows, skipped = predict_file(model, source, tmp_path / "out.h5")
    assert (rows, skipped) == (7, 0)


def test_upstream_main_file(run_path: Path, tmp_path: Path) -> None:
    eager = eager_model(run_path, 10)
    path = _save(MainLayout(eager), tmp_path / "model2_cpu.pt")  # no card, no X_from_F4
    model = load_exported(path)
    assert (model.layout, model.origin) == ("main", "upstream")
    F4 = random_physical_F4(50, seed=8, dtype=torch.float64).numpy()
    F4_final, growth, stability = model.predict_all(F4)
    with torch.inference_mode():
        want = eager.predict_all(torch.as_tensor(F4, dtype=torch.float32))
    np.testing.assert_allclose(F4_final, want[0].double().numpy(), rtol=1e-5, atol=1e25)
    np.testing.assert_allclose(growth, want[1].double().numpy(), rtol=1e-5)
    np.testing.assert_allclose(stability, want[2].double().numpy(), atol=1e-7)


@pytest.mark.parametrize("card", ["{not json", "[1, 2]", '"a string"', '{"config": [1]}'])
def test_malformed_embedded_card_is_a_clear_error(
    run_path: Path, tmp_path: Path, card: str
) -> None:
    path = _save(eager_model(run_path, 10), tmp_path / "m.pt", card=card)
    with pytest.raises(ModelFileError, match=r"model card inside .*m\.pt"):
        load_exported(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist") as missing:
        load_exported(tmp_path / "absent.pt")
    assert missing.value.title == "Model file error"
    with pytest.raises(ModelFileError, match="is a directory, not a model file"):
        load_exported(tmp_path)


def test_card_beside_is_named_after_the_whole_file_name(
    rhea_home: Path, run_path: Path, tmp_path: Path
) -> None:
    result = export_run(rhea_home, "tiny", cpu=True, output=tmp_path / "model.pt")
    assert result.card_path == tmp_path / "model.pt.card.json"
    assert not (tmp_path / "model.card.json").exists()


class Foreign:
    """A class that a safe (weights_only) load refuses."""


def test_checkpoint_errors_never_advise_loading_unsafely(tmp_path: Path) -> None:
    path = tmp_path / "epoch_00001.pt"
    torch.save({"format": "x", "model": Foreign()}, path)
    with pytest.raises(RunError) as caught:
        load_checkpoint(path)
    text = caught.value.message
    assert "safe load refuses" in text and "Foreign" in text
    assert "weights_only" not in text and "can still be loaded" not in text

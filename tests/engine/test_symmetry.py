"""Flavor symmetries: the groups, exact invariance/equivariance of every architecture (eager and
TorchScript), and the symmetry config keys."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch
from train_fixtures import random_F4

from rhea_engine.config import TrainConfig
from rhea_engine.errors import ConfigError
from rhea_engine.export import compare_predictions, random_physical_F4, script_model
from rhea_engine.model import build_model
from rhea_engine.models import symmetry as sym

ARCHITECTURES = ("transfer", "equivariant")
SMALL = {"width_shared": 16, "width_stability": 8, "width_growthrate": 8}
SMALL |= {"width_density": 8, "width_flux": 8}


def _config(architecture: str, symmetry: str, **changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        **SMALL,
        "architecture": architecture,
        "symmetry": symmetry,
        "average_heavies_in_final_state": symmetry != "full",
        "do_eln_inputs": True,
        **changes,
    }
    return TrainConfig(**settings)  # type: ignore[arg-type]


def _model(architecture: str, symmetry: str, **changes: object) -> torch.nn.Module:
    torch.manual_seed(1)
    config = _config(architecture, symmetry, **changes)
    model = build_model(config).double()
    # batch-norm statistics from physical inputs, so that eval mode is not the identity
    with torch.no_grad():
        X = model.X_from_F4(random_physical_F4(512, config.NF, seed=8, dtype=torch.float64))
        model.train()(X)
    return model.eval()


def _F4(n: int = 200, seed: int = 0) -> torch.Tensor:
    """Generic cells (every species different), so that no symmetry holds by accident."""
    return random_physical_F4(n, seed=seed, dtype=torch.float64)


def _worst_violation(
    model: torch.nn.Module, F4: torch.Tensor, elements: list[sym.FlavorSymmetry]
) -> float:
    """Largest change of stability, relative growth rate, or final F4 (of ntot) when the input
    is transformed, against the transformed output."""
    ntot = F4[:, 3].sum(dim=(1, 2))
    with torch.no_grad():
        F4_final, growth, stability = model.predict_all(F4)
        worst = 0.0
        for g in elements:
            F4_g, growth_g, stability_g = model.predict_all(sym.transform_F4(F4, g))
            dF4 = (F4_g - sym.transform_F4(F4_final, g)).abs().amax(dim=(1, 2, 3)) / ntot
            worst = max(
                worst,
                float(dF4.max()),
                float((growth_g / growth - 1).abs().max()),
                float((stability_g - stability).abs().max()),
            )
    return worst


def test_groups_have_the_expected_orders_and_are_closed() -> None:
    orders = {("none", 3): 1, ("box3d", 3): 4, ("full", 3): 12, ("box3d", 2): 2, ("full", 2): 4}
    for (name, NF), order in orders.items():
        elements = sym.group(name, NF)
        assert len(elements) == order
        perms = {tuple(sym.species_permutation(g)) for g in elements}
        assert len(perms) == order
        for p, q in itertools.product(perms, perms):
            assert tuple(p[k] for k in q) in perms
    assert sym.group("box3d", 3)[0] == sym.FlavorSymmetry(False, (0, 1, 2))


def test_box3d_is_exactly_symmetric_under_its_group_but_not_under_e_mu() -> None:
    """The physics the group choice rests on (docs/physics.md §7)."""
    from rhea_engine.physics import box3d

    F4 = torch.as_tensor(random_F4(300, seed=4))  # mu = tau, as in merger data
    final = torch.as_tensor(box3d(F4.numpy()).F4_final)
    ntot = F4[:, 3].sum(dim=(1, 2))[:, None, None, None]
    for g in sym.group("box3d", 3):
        moved = torch.as_tensor(box3d(sym.transform_F4(F4, g).numpy()).F4_final)
        assert ((moved - sym.transform_F4(final, g)).abs() / ntot).max() < 1e-12
    e_mu = sym.FlavorSymmetry(False, (1, 0, 2))
    moved = torch.as_tensor(box3d(sym.transform_F4(F4, e_mu).numpy()).F4_final)
    assert ((moved - sym.transform_F4(final, e_mu)).abs() / ntot).max() > 1e-3


@pytest.mark.parametrize("do_fdotu", [True, False])
@pytest.mark.parametrize("do_eln_inputs", [True, False])
def test_input_gather_is_the_inputs_of_the_transformed_cell(
    do_fdotu: bool, do_eln_inputs: bool
) -> None:
    model = _model("transfer", "none", do_fdotu=do_fdotu, do_eln_inputs=do_eln_inputs)
    F4 = _F4()
    X = model.X_from_F4(F4)
    for g in sym.group("full", 3):
        index, sign = sym.input_gather(g, do_fdotu, do_eln_inputs)
        gathered = X[:, index] * torch.tensor(sign, dtype=X.dtype)
        torch.testing.assert_close(
            gathered, model.X_from_F4(sym.transform_F4(F4, g)), atol=1e-14, rtol=0
        )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("symmetry", ["box3d", "full"])
def test_models_are_exact_under_their_group(architecture: str, symmetry: str) -> None:
    model = _model(architecture, symmetry)
    F4 = _F4()
    assert _worst_violation(model, F4, sym.group(symmetry, 3)) < 1e-12
    # ... and exactly as symmetric as asked: a larger group is not respected
    if symmetry == "box3d":
        assert _worst_violation(model, F4, sym.group("full", 3)) > 1e-4


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_models_without_symmetry_are_not_symmetric(architecture: str) -> None:
    """The check above can fail: an unconstrained model changes under nu<->nubar and mu<->tau."""
    model = _model(architecture, "none")
    F4 = _F4()
    for g in sym.group("box3d", 3)[1:]:
        assert _worst_violation(model, F4, [g]) > 1e-4


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("symmetry", ["box3d", "full"])
def test_torchscript_keeps_the_symmetry(architecture: str, symmetry: str) -> None:
    model = _model(architecture, symmetry).float()
    scripted = script_model(model)
    F4 = _F4(300, seed=3).float()
    with torch.no_grad():
        diffs = compare_predictions(F4, model.predict_all(F4), scripted.predict_all(F4))
    assert max(diffs["max_F4_final_over_ntot"], diffs["max_rel_growthrate"]) < 1e-6
    assert diffs["max_abs_stability"] < 1e-6
    # float32: exact up to the order of the sums over the group and the species
    assert _worst_violation(scripted, F4, sym.group(symmetry, 3)) < 2e-6


@pytest.mark.parametrize("symmetry", ["none", "box3d", "full"])
def test_symmetric_transfer_model_keeps_conservation_and_eln(symmetry: str) -> None:
    for lepton in ("direct", "ymatrix"):
        model = _model("transfer", symmetry, conserve_lepton_number=lepton)
        F4 = _F4()
        with torch.no_grad():
            F4_final = model.predict_all(F4)[0]
        ntot = F4[:, 3].sum(dim=(1, 2))
        drift = (F4_final.sum(dim=3) - F4.sum(dim=3)).abs().amax(dim=(1, 2)) / ntot
        d_eln = (F4_final[:, 3, 0] - F4_final[:, 3, 1]) - (F4[:, 3, 0] - F4[:, 3, 1])
        assert drift.max() < 1e-12
        assert (d_eln.abs() / ntot[:, None]).max() < 1e-12


def test_full_symmetry_refuses_heavy_averaging() -> None:
    with pytest.raises(ConfigError, match="average_heavies_in_final_state"):
        TrainConfig(symmetry="full")
    TrainConfig(symmetry="full", average_heavies_in_final_state=False)
    TrainConfig(symmetry="full", NF=2)  # two flavors: nothing to average
    with pytest.raises(ConfigError, match="symmetry"):
        TrainConfig(symmetry="e-mu")
    with pytest.raises(ConfigError, match="architecture"):
        TrainConfig(architecture="e3nn")


def test_two_flavor_models_are_exact_too() -> None:
    F4 = random_physical_F4(100, 2, seed=2, dtype=torch.float64)
    for architecture in ARCHITECTURES:
        model = _model(architecture, "full", NF=2)
        assert _worst_violation(model, F4, sym.group("full", 2)) < 1e-12


def test_transfer_models_never_import_e3nn() -> None:
    code = (
        "import sys\n"
        "from rhea_engine.config import TrainConfig\n"
        "from rhea_engine.model import build_model\n"
        "build_model(TrainConfig(symmetry='box3d'))\n"
        "print('e3nn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_e3nn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "e3nn", None)  # what an absent package looks like
    with pytest.raises(ConfigError, match=r"e3nn.*pip install"):
        build_model(TrainConfig(architecture="equivariant"))

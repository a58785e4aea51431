"""Write the Python half of the C++ parity test: an exported model, inputs and expected outputs.

Run by ctest (the `parity_data` fixture of cpp_interface/CMakeLists.txt):

    python tests/cpp/make_parity_data.py --out cpp_interface/build/parity [--cells 2000] [--aoti]

A small real Rhea model (random weights, batch-norm statistics from physical inputs) is
exported through `rhea_engine.export`; its Python predictions on random physical cells are
stored in TorchScript containers that the C++ program reads back.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from rhea_engine.config import TrainConfig
from rhea_engine.export import export_model, quiet_torchscript, random_physical_F4
from rhea_engine.model import build_model

SMALL = {
    "width_shared": 32,
    "width_stability": 16,
    "width_growthrate": 16,
    "width_density": 16,
    "width_flux": 16,
}

#: (architecture, symmetry) of the extra exports; cpp_interface/CMakeLists.txt tests each.
SYMMETRIC = (
    ("transfer", "box3d"),
    ("transfer", "full"),
    ("equivariant", "box3d"),
    ("equivariant", "full"),
)


class Expected(torch.nn.Module):
    """A container of tensors that C++ reads with torch::jit::load(...).attr(name)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor.detach().cpu().contiguous())

    def forward(self) -> int:
        return 0


def small_model(seed: int = 3) -> torch.nn.Module:
    """A small model whose batch-norm statistics come from physical inputs, as after training."""
    torch.manual_seed(seed)
    model = build_model(TrainConfig(**SMALL))
    model.train()
    with torch.no_grad():
        for step in range(20):
            model(model.X_from_F4(random_physical_F4(512, seed=1000 + step)))
    return model.eval()


def symmetric_model(architecture: str, symmetry: str, seed: int = 5) -> torch.nn.Module:
    """A small model of `architecture`, exact under the flavor group `symmetry`."""
    config = TrainConfig(
        **SMALL,
        architecture=architecture,
        symmetry=symmetry,
        average_heavies_in_final_state=symmetry != "full",
    )
    torch.manual_seed(seed)
    model = build_model(config)
    model.train()
    with torch.no_grad():
        for step in range(5):
            model(model.X_from_F4(random_physical_F4(512, seed=2000 + step)))
    return model.eval()


def save_symmetry_expected(
    path: Path, F4_initial: torch.Tensor, outputs: tuple[torch.Tensor, ...], symmetry: str
) -> None:
    """Inputs g·F4 for every g of the group, and as expected outputs g·(outputs for F4)."""
    from rhea_engine.models.symmetry import group, transform_F4

    elements = group(symmetry, int(F4_initial.shape[-1]))
    F4_final, growthrate, stability = outputs
    inputs = torch.cat([transform_F4(F4_initial, g) for g in elements])
    finals = torch.cat([transform_F4(F4_final, g) for g in elements])
    n = len(elements)
    save_expected(path, inputs, (finals, growthrate.repeat(n), stability.repeat(n)))


def save_expected(path: Path, F4_initial: torch.Tensor, outputs: tuple[torch.Tensor, ...]) -> None:
    F4_final, growthrate, stability = outputs
    container = Expected(
        {
            "F4_initial": F4_initial,
            "F4_final": F4_final,
            "growthrate": growthrate,
            "stability": stability,
        }
    )
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(container), str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--aoti", action="store_true", help="also export an AOTInductor package")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("default")  # anything export lets through would show here
    args.out.mkdir(parents=True, exist_ok=True)
    model = small_model()
    card = {"run": {"name": "cpp-parity"}, "config": TrainConfig(**SMALL).to_dict()}
    F4_initial = random_physical_F4(args.cells, seed=2024)

    result = export_model(model, args.out / "model.pt", card)
    print(f"exported {result.path} (eager vs TorchScript: {result.parity})")
    main = export_model(model, args.out / "model_main.pt", card, layout="main")
    print(f"exported {main.path} in upstream main's layout (eager vs it: {main.parity})")
    with quiet_torchscript():
        scripted = torch.jit.load(str(result.path))
    with torch.inference_mode():
        save_expected(
            args.out / "expected_torchscript.pt", F4_initial, scripted.predict_all(F4_initial)
        )

    # Each architecture under each flavor group: C++ parity with Python, and C++ outputs of the
    # transformed cells against the transformed Python outputs (exact up to float rounding).
    for architecture, symmetry in SYMMETRIC:
        name = f"{architecture}_{symmetry}"
        result = export_model(
            symmetric_model(architecture, symmetry), args.out / f"{name}.pt", card
        )
        print(f"exported {result.path} (eager vs TorchScript: {result.parity})")
        with quiet_torchscript():
            scripted = torch.jit.load(str(result.path))
        with torch.inference_mode():
            outputs = scripted.predict_all(F4_initial)
        save_expected(args.out / f"expected_{name}.pt", F4_initial, outputs)
        save_symmetry_expected(args.out / f"symmetry_{name}.pt", F4_initial, outputs, symmetry)

    if args.aoti:
        result = export_model(model, args.out / "model.pt2", card, fmt="aoti")
        print(f"exported {result.path} (eager vs AOTInductor: {result.parity})")
        with quiet_torchscript():
            runner = torch._inductor.aoti_load_package(str(result.path))
        with torch.inference_mode():
            save_expected(args.out / "expected_aoti.pt", F4_initial, tuple(runner(F4_initial)))
    print(f"wrote {args.cells} cells of expected predictions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

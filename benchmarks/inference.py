"""Inference speed of an exported model: eager Python, TorchScript and AOTInductor (Python and C++).

Median seconds per predict_all call at N = 1, 1,000 and 100,000 cells, one thread, for a
model of the default size (TrainConfig widths). The C++ figures come from
cpp_interface/build/rhea_ffi_check (built here with CMake if missing). Target: AOTInductor
in C++ at N = 1 at least 5x faster than eager Python.

    .venv/bin/python benchmarks/inference.py [--sizes 1,1000,100000] [--no-cpp] [--no-aoti]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from rhea_engine.config import TrainConfig
from rhea_engine.export import export_model, quiet_torchscript, random_physical_F4
from rhea_engine.model import build_model

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "cpp_interface" / "build"
CHECK = BUILD / "rhea_ffi_check"


def repeats_for(n: int) -> int:
    return 300 if n <= 10 else 40 if n <= 10_000 else 5


def median_seconds(
    predict: Callable[[torch.Tensor], object], F4: torch.Tensor, repeats: int
) -> float:
    with torch.inference_mode():
        for _ in range(3):  # warm-up (TorchScript profiling runs, caches)
            predict(F4)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(F4)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def trained_looking_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(TrainConfig())
    model.train()
    with torch.no_grad():
        for step in range(10):
            model(model.X_from_F4(random_physical_F4(2048, seed=step)))
    return model.eval()


def save_inputs(path: Path, F4: torch.Tensor) -> None:
    """The cells as a TorchScript container, so that C++ times exactly the same input."""

    class Inputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("F4_initial", F4)

        def forward(self) -> int:
            return 0

    with quiet_torchscript():
        torch.jit.save(torch.jit.script(Inputs()), str(path))


def build_cpp() -> bool:
    """Configure (once) and build rhea_ffi_check incrementally; False without cmake."""
    if shutil.which("cmake") is None:
        return False
    if not (BUILD / "CMakeCache.txt").is_file():
        subprocess.run(
            [
                "cmake",
                "-S",
                str(REPO / "cpp_interface"),
                "-B",
                str(BUILD),
                "-DCMAKE_BUILD_TYPE=Release",
                f"-DPython3_EXECUTABLE={sys.executable}",
            ],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        ["cmake", "--build", str(BUILD), "-j", "2", "--target", "rhea_ffi_check"],
        check=True,
        capture_output=True,
    )
    return CHECK.is_file()


def cpp_median(model_path: Path, inputs: Path, n: int) -> float:
    out = subprocess.run(
        [str(CHECK), "bench", str(model_path), str(inputs), str(repeats_for(n))],
        check=True,
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    ).stdout
    return float(out.split("median_seconds")[1].split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,100000")
    parser.add_argument("--no-cpp", action="store_true")
    parser.add_argument("--no-aoti", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    torch.set_num_threads(1)
    model = trained_looking_model()
    work = Path(tempfile.mkdtemp(prefix="rhea-bench-"))
    paths = {"torchscript": export_model(model, work / "model.pt", card={}).path}
    if not args.no_aoti:
        start = time.perf_counter()
        paths["aoti"] = export_model(model, work / "model.pt2", card={}, fmt="aoti").path
        print(f"AOTInductor package compiled in {time.perf_counter() - start:.1f} s")
    with quiet_torchscript():
        scripted = torch.jit.load(str(paths["torchscript"]))
        runners: dict[str, Callable[[torch.Tensor], object]] = {
            "eager Python": model.predict_all,
            "TorchScript Python": scripted.predict_all,
        }
        if "aoti" in paths:
            runners["AOTInductor Python"] = torch._inductor.aoti_load_package(str(paths["aoti"]))
    have_cpp = not args.no_cpp and build_cpp()
    print(
        f"torch {torch.__version__}, one thread, model of the default size "
        f"({sum(p.numel() for p in model.parameters())} parameters); median seconds per call"
    )
    header = f"{'N':>8} " + " ".join(
        f"{name:>20}"
        for name in [
            *runners,
            *(["TorchScript C++"] if have_cpp else []),
            *(["AOTInductor C++"] if have_cpp and "aoti" in paths else []),
        ]
    )
    print(header)
    results: dict[tuple[str, int], float] = {}
    for n in sizes:
        F4 = random_physical_F4(n, seed=n)
        inputs = work / f"inputs_{n}.pt"
        save_inputs(inputs, F4)
        for name, predict in runners.items():
            results[name, n] = median_seconds(predict, F4, repeats_for(n))
        if have_cpp:
            results["TorchScript C++", n] = cpp_median(paths["torchscript"], inputs, n)
            if "aoti" in paths:
                results["AOTInductor C++", n] = cpp_median(paths["aoti"], inputs, n)
        print(f"{n:>8} " + " ".join(f"{results[k]:>20.3e}" for k in results if k[1] == n))
    if ("AOTInductor C++", 1) in results:
        ratio = results["eager Python", 1] / results["AOTInductor C++", 1]
        verdict = "meets" if ratio >= 5 else "MISSES"
        print(
            f"AOTInductor C++ at N = 1 is {ratio:.1f}x faster than eager Python "
            f"({verdict} the 5x target)"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

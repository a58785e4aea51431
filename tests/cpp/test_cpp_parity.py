"""The C++ interface: CMake build against the torch wheel's libtorch, then ctest (parity with
Python on random physical cells, restrict_to_physical, the NSM1 example).

The build directory cpp_interface/build is kept between runs, so only the first build
compiles (about a minute on two cores). Skips with the reason when cmake or g++ is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rhea_engine.export import export_model, quiet_torchscript, random_physical_F4

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_parity_data import (  # noqa: E402
    SYMMETRIC,
    save_expected,
    save_symmetry_expected,
    small_model,
    symmetric_model,
)

pytestmark = pytest.mark.cpp
REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "cpp_interface" / "build"


def _run(cmd: list[str], cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def build_dir() -> Path:
    missing = [tool for tool in ("cmake", "g++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the C++ toolchain is incomplete here (missing: {', '.join(missing)})")
    configure = _run(
        [
            "cmake",
            "-S",
            "cpp_interface",
            "-B",
            str(BUILD),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ]
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    build = _run(["cmake", "--build", str(BUILD), "-j", "2"])
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-5000:]
    return BUILD


def test_ctest_parity_with_python(build_dir: Path) -> None:
    result = _run(["ctest", "--output-on-failure", "-V"], cwd=build_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    figures = re.findall(
        r"parity (\S+): (\d+) cells, max \|dF4\|/ntot = (\S+), max relative "
        r"d\(growth rate\) = (\S+), max \|d\(stability\)\| = (\S+)",
        output,
    )
    assert {Path(f[0]).suffix for f in figures} == {".pt", ".pt2"}, output[-4000:]
    # the --layout main export, called in upstream main's layout, agrees with the same numbers
    assert "model_main.pt" in {Path(f[0]).name for f in figures}
    assert "was exported with --layout main" in output  # FFISubgridModel.h says why it refuses
    symmetric = {f"{a}_{s}.pt" for a, s in SYMMETRIC}
    # each symmetric export twice: parity, and transformed cells against transformed outputs
    assert sorted(Path(f[0]).name for f in figures if Path(f[0]).name in symmetric) == sorted(
        2 * list(symmetric)
    ), output[-4000:]
    for path, cells, dF4, dgrowth, dstability in figures:
        assert int(cells) >= 1000
        tolerance = 1e-5 if Path(path).name in symmetric else 1e-6
        assert max(float(dF4), float(dgrowth), float(dstability)) <= tolerance
    assert "the corrected tensor is returned" in output
    assert re.search(r"growth rate: \d\.\d+e\+\d+ 1/s", output)
    print(
        "\n".join(
            f"C++ vs Python {Path(f[0]).name}: {f[1]} cells, |dF4|/ntot {f[2]}, "
            f"growth {f[3]}, stability {f[4]}"
            for f in figures
        )
    )


def test_parity_program_detects_a_different_model(build_dir: Path, tmp_path: Path) -> None:
    """Expected outputs of one model against another model's export must fail the check."""
    model_path = export_model(small_model(seed=3), tmp_path / "model.pt", card={}).path
    F4 = random_physical_F4(1000, seed=77)
    with torch.inference_mode():
        save_expected(tmp_path / "other.pt", F4, small_model(seed=4).predict_all(F4))
        with quiet_torchscript():
            scripted = torch.jit.load(str(model_path))
        save_expected(tmp_path / "same.pt", F4, scripted.predict_all(F4))
    check = str(build_dir / "rhea_ffi_check")
    same = _run([check, "parity", str(model_path), str(tmp_path / "same.pt")])
    other = _run([check, "parity", str(model_path), str(tmp_path / "other.pt")])
    assert same.returncode == 0 and "PASS" in same.stdout, same.stdout + same.stderr
    assert other.returncode == 1 and "FAIL" in other.stdout, other.stdout + other.stderr


def test_cpp_refuses_a_model_that_is_not_rhea(build_dir: Path, tmp_path: Path) -> None:
    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with quiet_torchscript():
        torch.jit.save(torch.jit.script(Other()), str(tmp_path / "other.pt"))
        F4 = random_physical_F4(10, seed=1)
        save_expected(tmp_path / "expected.pt", F4, (F4, F4[:, 0, 0, 0], F4[:, 0, 0, 0]))
    check = str(build_dir / "rhea_ffi_check")
    result = _run([check, "parity", str(tmp_path / "other.pt"), str(tmp_path / "expected.pt")])
    assert result.returncode == 1
    assert "is not a Rhea FFI model: it lacks the method predict_all" in result.stderr


def test_symmetry_check_detects_a_model_without_the_symmetry(
    build_dir: Path, tmp_path: Path
) -> None:
    """The C++ symmetry check can fail: a model without a symmetry fails it, the same model
    made symmetric passes it."""
    F4 = random_physical_F4(1000, seed=78)
    check = str(build_dir / "rhea_ffi_check")
    for symmetry, expected_rc in (("none", 1), ("box3d", 0)):
        model = symmetric_model("transfer", symmetry)
        path = export_model(model, tmp_path / f"{symmetry}.pt", card={}).path
        with torch.inference_mode():
            outputs = model.predict_all(F4)
        save_symmetry_expected(tmp_path / f"{symmetry}_expected.pt", F4, outputs, "box3d")
        result = _run(
            [check, "parity", str(path), str(tmp_path / f"{symmetry}_expected.pt"), "1e-5"]
        )
        assert result.returncode == expected_rc, result.stdout + result.stderr

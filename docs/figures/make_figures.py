"""Regenerate the example figures in this folder from a real (small) learning-rate sweep.

Usage: .venv/bin/python docs/figures/make_figures.py [--home DIR]   (a few minutes on two
cores, or seconds with a --home that holds the sweep from an earlier call; needs
matplotlib, `pip install -e '.[plot]'`, and pdftoppm from poppler-utils for the paper-style
preview; pngquant, if present, shrinks the PNGs)

Everything goes through the command line a user types: `rhea data synth`, `rhea sweep`,
`rhea plot`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
RHEA = [sys.executable, "-c", "from rhea_tui.cli import main; main()"]

FIGURES = {  # file -> rhea plot arguments
    "run-curves.png": ["lr-2"],
    "sweep-overlay.png": ["sweep:lr", "--metric", "test_loss", "--metric", "ELN_violation_test"],
    "sweep-grid.png": ["sweep:lr", "--kind", "grid"],
    "sweep-final.png": ["sweep:lr", "--kind", "final", "--vs", "learning_rate", "--at", "best"],
    "sweep-pareto.png": [
        "sweep:lr",
        "--kind",
        "pareto",
        "--objective",
        "test_loss",
        "--objective",
        "model_ndens_e_mean_err",
        "--at",
        "best",
    ],
    "evaluation.png": ["lr-2", "--kind", "evaluation"],
}


def rhea(home: Path, *args: str) -> None:
    env = {**os.environ, "RHEA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    subprocess.run([*RHEA, *args], check=True, env=env, stdout=subprocess.DEVNULL)


def make_sweep(home: Path) -> None:
    data = home / "data"
    rhea(home, "data", "synth", str(data), "--n", "12000", "--seed", "1")
    rhea(
        home,
        "sweep",
        "--name",
        "lr",
        "--lr",
        "3e-3,1e-3,3e-4",
        "--width",
        "8,24",
        "--nhidden",
        "1",
        "--epochs",
        "16",
        "--batch-size",
        "256",
        "--set",
        "epoch_num_samples=3000",
        "--set",
        "warmup_iters=2",
        "--data",
        str(data / "asymptotic.h5"),
        "--stable-data",
        str(data / "stable.h5"),
        "--parallel",
        "2",
    )


def shrink(png: Path) -> None:
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--output", str(png), str(png)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="keep the sweep here (reused if present)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rhea-figures-") as tmp:
        home = args.home or Path(tmp)
        if not (home / "runs.db").exists():
            make_sweep(home)
        for name, args in FIGURES.items():
            rhea(home, "plot", *args, "-o", str(HERE / name))
            shrink(HERE / name)
        paper = home / "paper.pdf"
        rhea(
            home, "plot", "sweep:lr", "--metric", "test_loss", "--style", "paper", "-o", str(paper)
        )
        if shutil.which("pdftoppm"):  # the PDF as a journal would print it, for the README
            subprocess.run(
                ["pdftoppm", "-png", "-r", "200", "-singlefile", str(paper), str(HERE / "paper")],
                check=True,
            )
            shrink(HERE / "paper.png")
    for png in sorted(HERE.glob("*.png")):
        print(f"{png.name:20} {png.stat().st_size / 1024:6.0f} kB")


if __name__ == "__main__":
    main()

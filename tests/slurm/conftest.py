"""A real single-node Slurm for these tests: started by .ci/start-slurm when run as root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

START_SLURM = Path(__file__).resolve().parents[2] / ".ci" / "start-slurm"


def _node_idle() -> bool:
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(s.strip("*~#") in ("idle", "mixed", "allocated", "completing") for s in out.split())


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The partition to submit to; skips (with the reason) when no Slurm can be had."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip("Slurm is not installed (apt-get install slurm-wlm munge)")
    if not _node_idle():
        if os.geteuid() != 0:
            pytest.skip("Slurm is not running and starting it needs root (.ci/start-slurm)")
        if not os.access(START_SLURM, os.X_OK):
            pytest.skip(f"{START_SLURM} is missing or not executable")
        try:
            done = subprocess.run([str(START_SLURM)], capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.skip(".ci/start-slurm did not finish within 180 s")
        if done.returncode != 0 or not _node_idle():
            reason = (done.stderr or done.stdout).strip().splitlines()[-3:]
            pytest.skip(f"Slurm could not start: {' | '.join(reason) or 'no output'}")
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20
    ).stdout.split()
    default = [p.rstrip("*") for p in out if p.endswith("*")]
    return default[0] if default else (out[0] if out else "debug")


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from rhea_engine.data.synth import synth_to_dir

    folder = tmp_path_factory.mktemp("synth")
    synth_to_dir(folder, n=2000, seed=1)
    return ["--data", str(folder / "asymptotic.h5"), "--stable-data", str(folder / "stable.h5")]

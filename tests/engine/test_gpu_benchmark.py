"""benchmarks/gpu.py runs end to end on the CPU (`--device cpu`), as a dry run with tiny sizes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_dry_run_on_cpu() -> None:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "gpu.py"),
        "--device",
        "cpu",
        "--batches",
        "256",
        "--modes",
        "eager",
        "--precisions",
        "fp32,bf16",
        "--epochs",
        "2",
        "--rows",
        "2000",
        "--epoch-samples",
        "1024",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    cases = [line.split() for line in lines if line.startswith("eager ")]
    assert [(c[1], c[2]) for c in cases] == [("fp32", "256"), ("bf16", "256")]
    assert all(float(c[3].replace(",", "")) > 0 for c in cases)  # samples per second
    assert "resume bit-for-bit (eager, fp32, batch 256): yes" in lines
    launcher = next(line for line in lines if line.startswith("launcher:"))
    assert "trained on cpu, ended completed (exit 0)" in launcher

"""Cost of the front end's data check (`check_file`, chunked) beside the worker's full read.

Writes a valid asymptotic and stable file of N rows each (float64, as `rhea data synth`
writes them), then, each in its own child process so that peak RSS is its own, times:
`check_file` on both (what `rhea run`, `rhea sweep` and the TUI form do before a run
exists) and `load_asymptotic` + `load_stable` (what the training process does anyway).
Wall and CPU seconds and peak RSS are printed side by side, with their ratios.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data_check.py [--rows 1000000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _valid_rows(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical rows (flux factors 0.3, final = initial, so conservation holds exactly)."""
    rng = np.random.default_rng(seed)
    F4 = np.zeros((n, 4, 2, 3))
    F4[:, 3] = rng.uniform(1.0, 2.0, (n, 2, 3)) * 1e32
    direction = rng.normal(size=(n, 3, 2, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    F4[:, :3] = 0.3 * F4[:, 3][:, None] * direction
    return F4, F4.copy(), np.full(n, 1e9)


def write_files(directory: Path, n: int) -> tuple[Path, Path]:
    from rhea_engine.data import write_asymptotic, write_stable

    F4_initial, F4_final, growth = _valid_rows(n)
    asymptotic = write_asymptotic(directory / "asymptotic.h5", F4_initial, F4_final, growth)
    stable = write_stable(directory / "stable.h5", F4_initial, np.arange(n) % 2)
    return asymptotic, stable


def measure(case: str, asymptotic: str, stable: str) -> dict[str, float]:
    """Run in a child: time one case; peak RSS is this process's own."""
    import h5py  # noqa: F401 - import cost kept out of the timed region

    from rhea_engine.data import load_asymptotic, load_stable
    from rhea_engine.data.validate import check_file

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    start, cpu_start = time.perf_counter(), time.process_time()
    if case == "write":
        write_files(Path(asymptotic).parent, int(stable))
        return {}
    if case == "check":
        check_file(asymptotic, "asymptotic")
        check_file(stable, "stable")
    else:
        load_asymptotic(asymptotic)
        load_stable(stable)
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu_start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "rss_before_mb": base_rss,
    }


def _child(case: str, asymptotic: Path, stable: Path | str) -> dict[str, float]:
    """One case in a fresh process (this one never holds the rows: a child's peak RSS
    starts at its parent's)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, str(asymptotic), str(stable)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where to write the files (default: a tmp dir)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case (best is printed)")
    parser.add_argument(
        "--child", nargs=3, metavar=("CASE", "ASYM", "STABLE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="rhea-data-check-") as tmp:
        asymptotic, stable = Path(tmp) / "asymptotic.h5", Path(tmp) / "stable.h5"
        _child("write", asymptotic, str(args.rows))  # type: ignore[arg-type]
        size_mb = (asymptotic.stat().st_size + stable.stat().st_size) / 1e6
        print(f"rows per file {args.rows}; files {size_mb:.0f} MB in all (page cache warm)")
        _child("check", asymptotic, stable)  # warms the page cache for both cases alike
        results = {}
        for case in ("check", "load"):
            runs = [_child(case, asymptotic, stable) for _ in range(args.repeat)]
            results[case] = min(runs, key=lambda r: r["cpu_s"])
    check, load = results["check"], results["load"]
    header = f"{'':32} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} {'growth MB':>10}"
    print(header)
    for label, r in (
        ("front-end check (check_file x2)", check),
        ("worker read (load_* x2)", load),
    ):
        growth = r["peak_rss_mb"] - r["rss_before_mb"]
        print(
            f"{label:32} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_mb']:12.0f} {growth:10.0f}"
        )
    print(
        f"ratio check/load: wall {check['wall_s'] / load['wall_s']:.2f}, "
        f"cpu {check['cpu_s'] / load['cpu_s']:.2f}, "
        f"peak RSS {check['peak_rss_mb'] / load['peak_rss_mb']:.2f}"
    )
    rate = 2 * args.rows / check["cpu_s"] / 1e6
    print(f"check throughput: {rate:.1f} M rows per CPU second")


if __name__ == "__main__":
    main()

"""Parallel CPU runs: 1, 2 and 4 concurrent runs on this machine's cores, shared by the launcher.

Real workers (`python -m rhea_engine.runs.worker`) train the throughput benchmark's model
in a scratch home, started two ways, in interleaved repeats:
  shared  - by Rhea's launcher (`launch.start_worker`): each gets a share of the cores, as
            many threads, its affinity, and OMP_WAIT_POLICY=PASSIVE (rhea_engine.runs.cores)
  default - as before the cores were shared: torch's default thread count in every worker
Printed per case: each run's steady epoch seconds (median of epochs 2..), the ratio to a
lone run of the same kind, and the aggregate samples per second of all runs (targets for 2
runs on 2 cores: epoch <= 2x a lone run's, aggregate >= 0.9x a lone run's). Then one run on
a machine kept busy by one spinning process per core. The load average is printed too.

    .venv/bin/python benchmarks/parallel_runs.py [--epochs 4] [--repeats 2] [--runs 1,2,4] [--limit 240]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from train_throughput import config_for, make_files  # noqa: E402

from rhea_engine.runs import launch  # noqa: E402
from rhea_engine.runs.cores import THREAD_VARIABLES, usable_cpus  # noqa: E402
from rhea_engine.runs.rundir import read_events  # noqa: E402
from rhea_engine.runs.store import Store  # noqa: E402

MODES = ("shared", "default")


def _clean_environment() -> None:
    """Workers must not inherit this process's thread settings (OMP_NUM_THREADS=1 ...)."""
    for name in (*THREAD_VARIABLES, "OMP_WAIT_POLICY"):
        os.environ.pop(name, None)


def _placement(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return "?"
    cpus = next(
        (line.split()[1] for line in status.splitlines() if "Cpus_allowed_list" in line), "?"
    )
    threads = next(
        (e.split(b"=")[1].decode() for e in environ if e.startswith(b"OMP_NUM_THREADS=")), "default"
    )
    return f"cpus {cpus}, threads {threads}"


def start_runs(
    store: Store, data_dir: Path, k: int, mode: str, epochs: int, tag: str
) -> list[tuple[Path, subprocess.Popen[bytes], str]]:
    config = config_for(data_dir, epochs=epochs, heartbeat_seconds=30.0)
    started = []
    for i in range(k):
        row = store.create_run(config.to_dict(), name=f"{tag}-{i}", status="queued")
        assert row.path is not None
        if mode == "shared":
            process = launch.start_worker(store, row.name)
        else:
            process = subprocess.Popen(
                launch.worker_command(row),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                cwd=store.home,
            )
        started.append((row.path, process, ""))
    time.sleep(0.5)
    return [(path, process, _placement(process.pid)) for path, process, _ in started]


def steady_epoch_seconds(run_dir: Path) -> float:
    """Median epoch seconds after the first; inf when fewer than two epochs finished."""
    events = read_events(run_dir).events
    epochs = [e["metrics"]["epoch_seconds"] for e in events if e.get("type") == "epoch"]
    return statistics.median(epochs[1:]) if len(epochs) >= 2 else math.inf


def measure(
    store: Store, data_dir: Path, k: int, mode: str, epochs: int, tag: str, limit_s: float
) -> tuple[list[float], list[str]]:
    """Start `k` runs, wait for them (stopping them after `limit_s`), their epoch seconds."""
    runs = start_runs(store, data_dir, k, mode, epochs, tag)
    deadline = time.monotonic() + limit_s
    for _, process, _ in runs:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
    return [steady_epoch_seconds(path) for path, _, _ in runs], [p for _, _, p in runs]


def _seconds(value: float, limit_s: float) -> str:
    return (
        f"{value:.2f} s"
        if math.isfinite(value)
        else f"> {limit_s / 2:.0f} s (< 2 epochs in {limit_s:.0f} s)"
    )


def _print_mode(
    mode: str,
    results: dict[tuple[int, str], list[list[float]]],
    placements: dict[tuple[int, str], list[str]],
    counts: tuple[int, ...],
    samples: int,
    limit_s: float,
) -> None:
    lone = statistics.median(s for rep in results[(1, mode)] for s in rep)
    print(
        f"{mode}: lone run {_seconds(lone, limit_s)} per epoch, {samples / lone:,.0f} samples/s "
        f"({placements[(1, mode)][0]})"
    )
    for k in counts[1:]:
        per_run = statistics.median(statistics.median(rep) for rep in results[(k, mode)])
        aggregate = statistics.median(sum(samples / s for s in rep) for rep in results[(k, mode)])
        lone_rate = samples / lone
        target = " (targets for 2 runs: <= 2x, >= 0.9x)" if k == 2 else ""
        print(
            f"  {k} runs: epoch {_seconds(per_run, limit_s)} = {per_run / lone:.2f}x a lone "
            f"run's, aggregate {aggregate:,.0f} samples/s = "
            f"{aggregate / lone_rate if lone_rate else math.inf:.2f}x a lone run's{target}"
            f"  [{'; '.join(placements[(k, mode)])}]"
        )


def spinners(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def report_parallel_runs(
    data_dir: Path,
    epochs: int = 4,
    repeats: int = 2,
    counts: tuple[int, ...] = (1, 2, 4),
    limit_s: float = 240.0,
) -> None:
    """Print the figures; a case still running after `limit_s` is stopped (inf: < 2 epochs)."""
    _clean_environment()
    ncpu = len(usable_cpus())
    samples = config_for(data_dir).epoch_num_samples
    print(
        f"\nparallel runs on {ncpu} usable CPUs ({epochs} epochs each, {samples:,} samples per epoch; load average {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="rhea-parallel-") as home:
        store = Store(home)
        results: dict[tuple[int, str], list[list[float]]] = {}
        placements: dict[tuple[int, str], list[str]] = {}
        for r in range(repeats):
            for k in counts:
                for mode in MODES if r % 2 == 0 else MODES[::-1]:
                    tag = f"{mode}-{k}-{r}"
                    seconds, where = measure(store, data_dir, k, mode, epochs, tag, limit_s)
                    results.setdefault((k, mode), []).append(seconds)
                    placements[(k, mode)] = where
        for mode in MODES:
            _print_mode(mode, results, placements, counts, samples, limit_s)
        busy = spinners(ncpu)
        try:
            for mode in MODES:
                seconds, where = measure(store, data_dir, 1, mode, 3, f"busy-{mode}", limit_s)
                print(
                    f"lone run beside {ncpu} spinning processes, {mode}: "
                    f"{_seconds(seconds[0], limit_s)} per epoch ({where[0]})"
                )
        finally:
            for process in busy:
                process.kill()
                process.wait()
        store.close()
    print(f"load average {os.getloadavg()[0]:.1f} after the parallel runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runs", default="1,2,4", help="numbers of concurrent runs (first: 1)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--limit", type=float, default=240.0, help="seconds before a case is stopped"
    )
    args = parser.parse_args()
    counts = tuple(int(c) for c in args.runs.split(","))
    with tempfile.TemporaryDirectory(prefix="rhea-bench-") as tmp:
        make_files(Path(tmp), args.rows)
        report_parallel_runs(Path(tmp), args.epochs, args.repeats, counts, args.limit)


if __name__ == "__main__":
    main()

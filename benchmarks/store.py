"""Run-store benchmark: ingestion rate, and the time of `rhea ls`, `show`, `compare` on a big store.

Builds a home of RUNS runs x EPOCHS epochs x METRICS metrics through the real path
(Store.create_run, events.jsonl written by RunWriter, refresh), then times the
in-process work of each command and the wall time of the real CLI as a subprocess
(which includes interpreter start-up; `python -c pass` and `rhea --help` are printed
beside it for reference).

    .venv/bin/python benchmarks/store.py [--runs 200] [--epochs 1000] [--metrics 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import EVENTS_FILE, RunWriter
from rhea_engine.runs.store import Store
from rhea_engine.vocabulary import TASKS


def metric_names(count: int) -> list[str]:
    """Realistic names first (as the trainer writes them), then filler up to `count`."""
    names = [
        "train_loss",
        "test_loss",
        "ELN_violation",
        "ELN_violation_test",
        "learning_rate",
        "epoch_seconds",
        "samples_per_second",
    ]
    for task in TASKS:
        names += [
            f"{task}_train_loss",
            f"{task}_test_loss",
            f"{task}_train_max",
            f"{task}_test_max",
        ]
    names += [f"extra_{i}" for i in range(max(0, count - len(names)))]
    return names[:count]


def write_events(path: Path, epochs: int, names: list[str], seed: int) -> None:
    """A finished run's events.jsonl, written line by line through RunWriter."""
    with RunWriter(path) as writer:
        writer.start(pid=1, host="bench-node", device="cpu", total_epochs=epochs)
        for epoch in range(1, epochs + 1):
            base = 1.0 / (epoch + seed)
            writer.epoch(epoch, {name: base * (1 + k / 97) for k, name in enumerate(names)})
            if epoch % 50 == 0:
                writer.heartbeat(epoch)
        writer.evaluation(
            {"model_test_loss": 0.1, "box3d_test_loss": 0.2, "identity_test_loss": 0.9}
        )
        writer.status("completed")


def best_of(fn: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    """(best, median) wall seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def cli_wall(args: list[str], home: Path, repeat: int = 3) -> tuple[float, float]:
    env = {**os.environ, "RHEA_HOME": str(home), "OMP_NUM_THREADS": "1", "COLUMNS": "120"}

    def call() -> None:
        result = subprocess.run(args, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    return best_of(call, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the home here and keep it")
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="rhea-bench-store-"))
    names = metric_names(args.metrics)
    total_rows = args.runs * args.epochs * args.metrics
    print(
        f"home {home}: {args.runs} runs x {args.epochs} epochs x {args.metrics} metrics "
        f"= {total_rows:,} metric rows"
    )

    store = Store(home)
    if not store.list_runs():
        start = time.perf_counter()
        for index in range(args.runs):
            row = store.create_run(
                {"learning_rate": 1e-3 * (1 + index % 7), "width_shared": 16 + index % 5},
                sweep=f"sweep{index // 50}",
            )
            write_events(row.path, args.epochs, names, index)  # type: ignore[arg-type]
        written = time.perf_counter() - start
        size = sum((home / "runs" / r.name / EVENTS_FILE).stat().st_size for r in store.list_runs())
        print(f"wrote events.jsonl files: {size / 1e6:.0f} MB in {written:.1f} s")
        start = time.perf_counter()
        applied = refresh(store)
        took = time.perf_counter() - start
        print(
            f"ingest: {applied:,} events, {total_rows:,} metric rows in {took:.2f} s "
            f"= {total_rows / took:,.0f} metric rows/s (target >= 100,000)"
        )
        print(f"runs.db: {store.path.stat().st_size / 1e6:.0f} MB")

    handles = [r.name for r in store.list_runs()][:8]
    print("\nin-process (best / median of 5, fresh Store each time as a CLI call would have)")

    def ls() -> None:
        with Store(home) as fresh:
            refresh(fresh)
            fresh.list_runs()

    def show() -> None:
        with Store(home) as fresh:
            refresh(fresh, [handles[0]])
            fresh.get_run(handles[0])
            fresh.metrics(handles[0])

    def compare_metrics() -> None:
        with Store(home) as fresh:
            refresh(fresh, handles)
            for handle in handles:
                fresh.metrics(handle)

    def ls_rendered() -> None:
        import io

        from rich.console import Console

        from rhea_tui.commands._runs_render import runs_table

        with Store(home) as fresh:
            refresh(fresh)
            Console(file=io.StringIO(), width=100).print(runs_table(fresh.list_runs()))

    figures = {
        "ls (ingest + list_runs)": ls,
        "ls + rendering the table (rich)": ls_rendered,
        "show (get_run + all metrics of 1 run)": show,
        "Store.metrics of 8 runs (all metrics)": compare_metrics,
    }
    try:
        from rhea_engine.compare import compare_runs  # noqa: F401

        def compare_engine() -> None:
            with Store(home) as fresh:
                compare_runs(fresh, handles)

        compare_engine()
        figures["compare of 8 runs (rhea_engine.compare.compare_runs)"] = compare_engine
    except Exception as exc:  # noqa: BLE001 - report and go on with the rest
        print(
            f"  (rhea_engine.compare.compare_runs not timed in-process: {type(exc).__name__}: {exc})"
        )
    for label, fn in figures.items():
        best, median = best_of(fn)
        print(f"  {label:55s} {best * 1000:8.1f} ms  (median {median * 1000:.1f} ms)")
    noop_ingest = best_of(lambda: refresh(store))
    print(f"  {'ingest with nothing new (a TUI refresh)':55s} {noop_ingest[0] * 1000:8.1f} ms")
    version = best_of(lambda: store.data_version(), 50)
    print(f"  {'data_version()':55s} {version[0] * 1e6:8.1f} us")

    rhea = str(Path(sys.executable).with_name("rhea"))
    print("\nCLI subprocess wall time (best / median of 3; includes interpreter start-up)")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "rhea --help": [rhea, "--help"],
        "rhea ls": [rhea, "ls"],
        f"rhea show {handles[0]}": [rhea, "show", handles[0]],
        "rhea compare (8 runs)": [rhea, "compare", *handles],
    }
    for label, command in commands.items():
        try:
            best, median = cli_wall(command, home)
        except SystemExit as exc:
            print(f"  {label:30s} failed: {str(exc).splitlines()[0]}")
            continue
        print(f"  {label:30s} {best:6.2f} s  (median {median:.2f} s)")
    print(json.dumps({"runs": args.runs, "epochs": args.epochs, "metrics": args.metrics}))
    if args.keep is None:
        store.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

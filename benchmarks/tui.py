"""Benchmark of `rhea tui` on a home of 200 runs x 1,000 epochs: first paint, live redraw, idle CPU.

Prints three figures against their targets:
  time to first paint    process start -> first frame showing all runs   (target < 1.5 s)
  epoch -> redrawn plot  a new epoch event -> the run screen's plot redrawn with it (< 2 s)
  idle CPU               process CPU time / wall time over ~10 s of idle, at 1 poll/s (< 3 %)
Usage: python benchmarks/tui.py [--runs 200] [--epochs 1000] [--home DIR] [--idle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rhea_engine.vocabulary import TASKS


def epoch_metrics(epoch: int, scale: float) -> dict[str, float]:
    decay = math.exp(-epoch / 200.0)
    metrics = {
        "train_loss": scale * (0.5 * decay + 0.02),
        "test_loss": scale * (0.55 * decay + 0.025 + 0.002 * math.sin(epoch)),
        "ELN_violation": 1e-3 * decay + 1e-6,
        "learning_rate": 1e-3 * 0.5 ** (epoch // 300),
        "epoch_seconds": 1.5,
    }
    for index, task in enumerate(TASKS):
        metrics[f"{task}_test_loss"] = scale * (0.1 + 0.02 * index) * decay + 1e-3
        metrics[f"{task}_train_loss"] = scale * (0.09 + 0.02 * index) * decay + 1e-3
    return metrics


def generate(home: Path, runs: int, epochs: int) -> dict[str, float]:
    """Write `runs` run directories of `epochs` epochs each (RunWriter), then ingest them."""
    from rhea_engine.config import default_config
    from rhea_engine.runs.procs import this_host
    from rhea_engine.runs.refresh import refresh
    from rhea_engine.runs.rundir import RunWriter
    from rhea_engine.runs.store import Store

    start = time.perf_counter()
    store = Store(home)
    config = default_config().to_dict()
    for index in range(runs):
        sweep = f"sweep{index // 20}"
        row = store.create_run(
            {**config, "epochs": epochs, "learning_rate": 1e-3 * (1 + index % 5)},
            name=f"run{index + 1}",
            sweep=sweep,
            status="running",
        )
        running = index >= runs - 4  # the last four stay running (this process is their pid)
        with RunWriter(row.path) as writer:
            writer.start(
                device="cpu",
                total_epochs=epochs if not running else epochs + 1000,
                data=[],
                host=this_host(),
                pid=os.getpid(),
            )
            for epoch in range(1, epochs + 1):
                writer.epoch(epoch, epoch_metrics(epoch, 1.0 + 0.01 * index))
            if not running:
                writer.status("completed")
    written = time.perf_counter() - start
    start = time.perf_counter()
    refresh(store)
    ingested = time.perf_counter() - start
    store.close()
    return {"write_s": written, "ingest_s": ingested}


def add_live_run(home: Path, epochs: int) -> str:
    """A running run owned by this process, `epochs` epochs in, to append new epochs to."""
    from rhea_engine.config import default_config
    from rhea_engine.runs.procs import this_host
    from rhea_engine.runs.refresh import refresh
    from rhea_engine.runs.rundir import RunWriter
    from rhea_engine.runs.store import Store

    with Store(home) as store:
        name = f"live{len(store.list_runs()) + 1}"
        row = store.create_run(default_config().to_dict(), name=name, status="running")
        with RunWriter(row.path) as writer:
            writer.start(
                device="cpu", total_epochs=2 * epochs, data=[], host=this_host(), pid=os.getpid()
            )
            for epoch in range(1, epochs + 1):
                writer.epoch(epoch, epoch_metrics(epoch, 1.0))
        refresh(store)
    return name


# --- child processes: the app itself, headless --------------------------------------------
def child_first_paint(home: str) -> None:
    """Run the app headless; print the wall time when the first frame with all runs is drawn."""
    from rhea_tui.app import RheaApp
    from rhea_tui.widgets.runs_table import RunsTable

    expected = int(sys.argv[4])

    class Timed(RheaApp):
        def on_mount(self) -> None:  # Textual calls RheaApp.on_mount as well, after this one
            self._timer = self.set_interval(0.01, self.check)

        def check(self) -> None:
            tables = self.screen.query(RunsTable)
            if tables and tables.first().row_count >= expected:
                self._timer.stop()
                self.call_after_refresh(self.painted)

        def painted(self) -> None:
            print(json.dumps({"painted": time.time()}), flush=True)
            self.exit()

    Timed(home).run(headless=True, size=(160, 48))


def child_idle(home: str, screen: str, seconds: float) -> None:
    """Run the app headless for a while, then print its CPU time over `seconds` of idle."""
    from rhea_tui.app import RheaApp
    from rhea_tui.screens.run import RunScreen

    class Idle(RheaApp):
        def on_mount(self) -> None:  # Textual calls RheaApp.on_mount as well, after this one
            if screen != "runs":
                self.call_later(lambda: self.push_screen(RunScreen(self.state, screen)))
            self.set_timer(3.0, self.begin)  # let the first reads settle

        def begin(self) -> None:
            self.cpu0, self.wall0, self.polls0 = (
                time.process_time(),
                time.monotonic(),
                self.state.polls,
            )
            self.set_timer(seconds, self.end)

        def end(self) -> None:
            cpu = time.process_time() - self.cpu0
            wall = time.monotonic() - self.wall0
            print(
                json.dumps({"cpu_s": cpu, "wall_s": wall, "polls": self.state.polls - self.polls0}),
                flush=True,
            )
            self.exit()

    Idle(home).run(headless=True, size=(160, 48))


def run_child(*args: str) -> dict[str, float]:
    started, cpu0 = time.time(), os.times()
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"child {args} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    result = json.loads(lines[-1])
    result["started"] = started
    cpu1 = os.times()  # the child's whole CPU time: a figure that load on the machine distorts less
    result["child_cpu_s"] = (
        cpu1.children_user + cpu1.children_system - cpu0.children_user - cpu0.children_system
    )
    return result


# --- in-process: new epoch -> redrawn plot ------------------------------------------------
async def epoch_to_redraw(home: Path, handle: str, first_epoch: int, repeats: int) -> list[float]:
    from rhea_engine.runs.rundir import RunWriter
    from rhea_tui.app import RheaApp
    from rhea_tui.screens.run import RunScreen
    from rhea_tui.widgets.plots import MetricPlot

    app = RheaApp(home)
    delays = []
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.state.loaded:
            await pilot.pause(0.01)
        app.push_screen(RunScreen(app.state, handle))
        await pilot.pause()
        plot = app.screen.query_one("#plot-loss", MetricPlot)
        while plot.point_count() < 2 * (first_epoch - 1) or plot.draws == 0:
            await pilot.pause(0.01)
        with RunWriter(home / "runs" / handle) as writer:
            for k in range(repeats):
                await pilot.pause(0.137 * (k % 7))  # land at different phases of the poll
                epoch = first_epoch + k
                draws = plot.draws
                t0 = time.perf_counter()
                writer.epoch(epoch, epoch_metrics(epoch, 1.0))
                deadline = t0 + 10
                while not (plot.series["test"][-1][0] == epoch and plot.draws > draws):
                    if time.perf_counter() > deadline:
                        raise SystemExit("the plot never showed the new epoch")
                    await pilot.pause(0.005)
                delays.append(time.perf_counter() - t0)
    return delays


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, home = sys.argv[2], sys.argv[3]
        if kind == "paint":
            child_first_paint(home)
        else:
            child_idle(home, sys.argv[4], float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--home", type=Path, help="reuse or keep this home (default: temporary)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle to measure")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="rhea-bench-tui-"))
    try:
        if not (home / "runs.db").exists():
            made = generate(home, args.runs, args.epochs)
            print(
                f"store: {args.runs} runs x {args.epochs} epochs "
                f"({len(epoch_metrics(1, 1))} metrics/epoch): written in {made['write_s']:.1f} s, "
                f"ingested in {made['ingest_s']:.1f} s"
            )
        paints, cpus = [], []
        for _ in range(3):
            result = run_child("paint", str(home), str(args.runs))
            paints.append(result["painted"] - result["started"])
            cpus.append(result["child_cpu_s"])
        print(
            f"time to first paint (process start -> {args.runs} runs drawn, 160x48): "
            f"median {statistics.median(paints):.2f} s, max {max(paints):.2f} s  (target < 1.5 s)"
            f"; CPU time of that process, start to exit: median {statistics.median(cpus):.2f} s"
        )
        live = add_live_run(home, args.epochs)
        delays = asyncio.run(epoch_to_redraw(home, live, args.epochs + 1, 10))
        print(
            f"new epoch event -> redrawn plot ({live}, 1 s poll, 10 events): median "
            f"{statistics.median(delays):.2f} s, max {max(delays):.2f} s  (target < 2 s)"
        )
        for screen in ("runs", live):
            idle = run_child("idle", str(home), screen, str(args.idle))
            share = 100 * idle["cpu_s"] / idle["wall_s"]
            where = "runs screen" if screen == "runs" else f"run screen of {live}"
            print(
                f"idle CPU, {where}: {share:.2f} % of a core "
                f"({idle['cpu_s']:.2f} s CPU over {idle['wall_s']:.1f} s, {idle['polls']} polls)"
                "  (target < 3 %)"
            )
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

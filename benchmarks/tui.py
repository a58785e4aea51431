"""Benchmark of `rhea tui` on a home of 200 runs x 1,000 epochs: first paint, live redraw, idle CPU.

Prints three figures against their targets, with every runs column on (best test loss, lr
now, epoch time, ETA, GPU figures of the running runs, the swept parameters of the grouped
view) and run-end notifications with the bell:
  time to first paint    process start -> first frame showing all runs   (target < 1.5 s)
  epoch -> redrawn plot  a new epoch event -> the run screen's plot redrawn with it (< 2 s)
  idle CPU               process CPU time / wall time over ~10 s of idle, at 1 poll/s (< 3 %)
and the memory of the TUI's process around an export, which runs in a child process.
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
        "ELN_violation_test": 1.2e-3 * decay + 2e-6,
        "learning_rate": 1e-3 * 0.5 ** (epoch // 300),
        "epoch_seconds": 1.5,
    }
    for index, task in enumerate(TASKS):
        metrics[f"{task}_test_loss"] = scale * (0.1 + 0.02 * index) * decay + 1e-3
        metrics[f"{task}_train_loss"] = scale * (0.09 + 0.02 * index) * decay + 1e-3
    return metrics


GPU_FIGURES = {
    "name": "NVIDIA H200",
    "utilization": 87.0,
    "memory_used": 40e9,
    "memory_total": 141e9,
    "process_memory": 12.3e9,
}


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
            {
                **config,
                "epochs": epochs,
                "learning_rate": 1e-3 * (1 + index % 5),
                "width_shared": 32 * (1 + index % 2),  # a second swept parameter per sweep
            },
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
            if running:  # what a worker on a GPU records every heartbeat
                writer.gpu([GPU_FIGURES | {"index": index % 4}])
            else:
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

    Timed(home, bell=True).run(headless=True, size=(160, 48))


def child_idle(home: str, screen: str, seconds: float) -> None:
    """Run the app headless for a while, then print its CPU time over `seconds` of idle."""
    from rhea_tui.app import RheaApp
    from rhea_tui.screens.run import RunScreen
    from rhea_tui.widgets.runs_table import RunsTable

    class Idle(RheaApp):
        def on_mount(self) -> None:  # Textual calls RheaApp.on_mount as well, after this one
            if screen != "runs":
                self.call_later(lambda: self.push_screen(RunScreen(self.state, screen)))
            else:  # grouped by sweep: the swept parameters as columns
                self.call_later(lambda: self.screen.action_group())
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
            polls = self.state.polls - self.polls0
            table = self.screen.query(RunsTable)
            columns = [c.key for c in table.first().columns_shown] if table else []
            print(
                json.dumps({"cpu_s": cpu, "wall_s": wall, "polls": polls, "columns": columns}),
                flush=True,
            )
            self.exit()

    Idle(home, bell=True).run(headless=True, size=(160, 48))


def rss_mb() -> tuple[float, float]:
    """(resident, peak resident) memory of this process in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def child_export(home: str, handle: str) -> None:
    """Run the app headless, export `handle` as the e key does; print its memory around it."""
    from rhea_tui import actions
    from rhea_tui.app import RheaApp

    class Exporting(RheaApp):
        def on_mount(self) -> None:  # Textual calls RheaApp.on_mount as well, after this one
            self.set_timer(3.0, self.begin)

        def begin(self) -> None:
            self.before, self.t0 = rss_mb(), time.monotonic()
            self.screen.act(f"Exporting {handle}", actions.export_run, handle)

        def notify(self, message: str, *args: object, **kwargs: object) -> None:
            super().notify(message, *args, **kwargs)  # type: ignore[arg-type]
            if "exported to" in message or kwargs.get("severity") == "error":
                seconds = time.monotonic() - self.t0
                after = rss_mb()
                print(
                    json.dumps(
                        {"before": self.before, "after": after, "s": seconds, "said": message}
                    ),
                    flush=True,
                )
                self.exit()

    Exporting(home).run(headless=True, size=(160, 48))


def write_checkpoint(home: Path, handle: str) -> None:
    """An (untrained) model checkpoint of the run's config, so that it can be exported."""
    import torch

    from rhea_engine.checkpoint import FORMAT, save_checkpoint
    from rhea_engine.config import from_dict
    from rhea_engine.model import build_model
    from rhea_engine.runs.rundir import read_config

    run = home / "runs" / handle
    config = read_config(run)["config"]
    torch.manual_seed(0)
    state = build_model(from_dict(config)).state_dict()
    ckpt = {"format": FORMAT, "model": state, "config": config, "epoch": 1, "kind": "periodic"}
    save_checkpoint(ckpt, run / "checkpoints" / "last.pt")


def measure_export(home: Path, handle: str) -> None:
    """The TUI's memory before and after it exports a run (the export runs in a child)."""
    write_checkpoint(home, handle)
    export = run_child("export", str(home), handle)
    (rss0, peak0), (rss1, peak1) = export["before"], export["after"]
    print(
        f"export from the TUI (child process), memory of the TUI's process: resident "
        f"{rss0:.0f} MB before, {rss1:.0f} MB after (peak {peak0:.0f} -> {peak1:.0f} MB); "
        f"export took {export['s']:.1f} s"
    )


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

    app = RheaApp(home, bell=True)
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
        elif kind == "export":
            child_export(home, sys.argv[4])
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
            shown = f"; columns: {' '.join(idle['columns'])}" if idle["columns"] else ""
            print(
                f"idle CPU, {where}: {share:.2f} % of a core "
                f"({idle['cpu_s']:.2f} s CPU over {idle['wall_s']:.1f} s, {idle['polls']} polls)"
                f"  (target < 3 %){shown}"
            )
        measure_export(home, "run1")
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

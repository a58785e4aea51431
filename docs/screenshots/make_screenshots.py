"""Regenerate the TUI screenshots in this folder: SVG from Textual, PNG through rsvg-convert.

Usage: .venv/bin/python docs/screenshots/make_screenshots.py   (needs rsvg-convert:
apt-get install librsvg2-bin; fonts-firacode gives the glyphs Textual's SVG asks for, and
pngquant, if present, shrinks the PNGs)
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from rhea_engine.config import default_config
from rhea_engine.runs.procs import this_host
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_engine.vocabulary import TASKS

HERE = Path(__file__).parent
GPU = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "memory_used": 31.4e9,
    "memory_total": 85.0e9,
    "process_memory": 29.8e9,
}


def metrics(epoch: int, lr: float, rng: random.Random, floor: float) -> dict[str, float]:
    decay = math.exp(-epoch * math.sqrt(lr / 1e-3) / 25)
    noise = 1 + 0.02 * rng.gauss(0, 1)
    out = {
        "train_loss": (2.0 * decay + floor) * noise,
        "test_loss": (2.1 * decay + 1.15 * floor) * (1 + 0.03 * rng.gauss(0, 1)),
        "ELN_violation": (3e-4 * decay + 2e-6) * (1 + 0.1 * abs(rng.gauss(0, 1))),
        "ELN_violation_test": (3.5e-4 * decay + 3e-6) * (1 + 0.1 * abs(rng.gauss(0, 1))),
        "learning_rate": lr * (0.5 ** (epoch // 60)) * min(1.0, epoch / 10),
        "epoch_seconds": 41.0 * (1 + 0.05 * rng.gauss(0, 1)),
    }
    for index, task in enumerate(TASKS):
        out[f"{task}_test_loss"] = ((0.3 + 0.1 * index) * decay + floor / (index + 2)) * noise
    return out


def build(home: Path) -> None:
    store = Store(home)
    config = default_config().to_dict()
    runs = [  # name, sweep, lr, width, epochs done, total, status, floor
        ("baseline", None, 1e-3, 64, 200, 200, "completed", 0.030),
        ("lr-1e-3", "lr-scan", 1e-3, 64, 200, 200, "completed", 0.028),
        ("lr-3e-4", "lr-scan", 3e-4, 64, 200, 200, "completed", 0.022),
        ("lr-1e-4", "lr-scan", 1e-4, 64, 137, 200, "running", 0.020),
        ("lr-3e-3", "lr-scan", 3e-3, 64, 41, 200, "diverged", 0.05),
        ("width-32", "width-scan", 3e-4, 32, 200, 200, "completed", 0.026),
        ("wide-128", "width-scan", 3e-4, 128, 12, 200, "failed", 0.02),
    ]
    for index, (name, sweep, lr, width, done, total, status, floor) in enumerate(runs):
        cfg = {
            **config,
            "learning_rate": lr,
            "epochs": total,
            "device": "cuda:0",
            **{
                f"width_{h}": width
                for h in ("shared", "stability", "growthrate", "density", "flux")
            },
        }
        row = store.create_run(cfg, name=name, sweep=sweep, status="running")
        rng = random.Random(index)
        live = status == "running"
        with RunWriter(row.path) as writer:
            writer.start(
                device="cuda:0",
                total_epochs=total,
                git_commit="4f2c9e1a7b",
                git_dirty=False,
                host=this_host() if live else "gpu-node03",
                pid=os.getpid() if live else 9000 + index,
                data=[
                    {"path": "data/asymptotic.h5", "sha256": "9a1f03c2" * 8, "kind": "asymptotic"},
                    {"path": "data/stable.h5", "sha256": "7be2d410" * 8, "kind": "stable"},
                ],
            )
            lines = []
            for epoch in range(1, done + 1):
                values = metrics(epoch, lr, rng, floor)
                writer.epoch(epoch, values)
                lines.append(
                    f"epoch {epoch}/{total}  train_loss {values['train_loss']:.4e}  "
                    f"test_loss {values['test_loss']:.4e}  "
                    f"ELN_test {values['ELN_violation_test']:.2e}"
                )
                if live and epoch % 20 == 0:  # what the worker samples through NVML
                    writer.gpu([GPU | {"utilization": 80.0 + epoch % 13}])
                if epoch % 50 == 0:
                    writer.checkpoint(
                        epoch, row.path / "checkpoints" / f"epoch_{epoch:05d}.pt", "periodic"
                    )
            if status == "completed":
                writer.checkpoint(done, row.path / "checkpoints" / "best.pt", "best")
                writer.evaluation(
                    {
                        "model_ndens_loss": 0.9 * floor,
                        "box3d_ndens_loss": 0.071,
                        "identity_ndens_loss": 0.31,
                        "model_growthrate_loss": 2.1 * floor,
                        "box3d_growthrate_loss": 0.12,
                        "identity_growthrate_loss": 0.45,
                    }
                )
                writer.status("completed")
            elif status == "diverged":
                writer.status(
                    "diverged",
                    epoch=done,
                    task="growthrate",
                    error="The loss of task 'growthrate' became non-finite at epoch 41; "
                    "the run was ended as diverged. Lower the learning rate (--lr).",
                )
            elif status == "failed":
                writer.status(
                    "failed",
                    error="RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
                    traceback='Traceback (most recent call last):\n  File "rhea_engine/train.py", '
                    "line 171, in train_epoch\n    loss.backward()\nRuntimeError: CUDA out "
                    "of memory. Tried to allocate 2.00 GiB",
                )
        (row.path / "stdout.log").write_text("\n".join(lines[-30:]) + "\n")
    store.tag("baseline", add=["reference"])
    store.tag("lr-3e-4", add=["paper"])
    refresh(store)
    store.close()


async def until(pilot, predicate) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):
        if predicate():
            return
        await pilot.pause(0.02)
    raise RuntimeError("screen never got its data")


def write_svg(app, svg: Path) -> None:  # type: ignore[no-untyped-def]
    """The app's screen as SVG. rsvg-convert draws Textual's no-break spaces with no width:
    plain spaces, kept as they are, put indented cells and carets where the terminal has them."""
    text = app.export_screenshot().replace("&#160;", " ")
    svg.write_text(text.replace("<svg ", '<svg xml:space="preserve" ', 1))


async def shoot(home: Path, out: Path, size: tuple[int, int], every_screen: bool) -> list[Path]:
    """Walk through the screens at one terminal size, saving an SVG of each."""
    from rhea_tui.app import RheaApp
    from rhea_tui.widgets.runs_table import RunsTable

    shots = []
    suffix = "" if every_screen else f"-{size[0]}x{size[1]}"
    app = RheaApp(home)

    async def take(name: str) -> None:
        await asyncio.sleep(0.3)
        svg = out / f"{name}{suffix}.svg"
        write_svg(app, svg)
        shots.append(svg)

    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state.loaded)
        table = app.screen.query_one(RunsTable)
        await pilot.press("space")
        table.move_cursor(row=3)
        await take("runs-screen")
        await pilot.press("enter")
        await until(
            pilot, lambda: "lr-1e-4" in app.state.details and app.state.series.get("lr-1e-4")
        )
        await take("run-screen")
        if not every_screen:
            return shots
        await pilot.press("escape", "C")
        sweep = ("lr-1e-3", "lr-3e-4", "lr-1e-4", "lr-3e-3")
        await until(pilot, lambda: all(app.state.series.get(h) for h in sweep))
        await take("compare-screen")
        await pilot.press("escape")
        table.move_cursor(row=6)
        await pilot.press("enter")
        await until(pilot, lambda: "wide-128" in app.state.details)
        await take("run-screen-failed")
        await pilot.press("escape", "n")
        await pilot.pause()
        app.screen.query_one("#field-lr").value = "0"
        await take("new-run-form")
        await pilot.press("escape", "escape", "w")
        await take("runs-screen-grouped")
        await pilot.press("w")
        table.move_cursor(row=3)
        await pilot.press("L")
        await pilot.pause(0.5)
        await pilot.press("slash", *"epoch 120", "enter")
        await take("log-screen")
        await pilot.press("escape", "question_mark")
        await take("help")
        await pilot.press("escape", "slash", *"sweep = lr-scan and learning_rate < 5e-4")
        await until(pilot, lambda: len(table._layout) == 2)
        await take("runs-filter")
        await pilot.press(*" or")
        await take("runs-filter-error")
    return shots


async def first_steps(home: Path, out: Path) -> Path:
    """The runs screen of a folder without runs."""
    from rhea_tui.app import RheaApp

    app = RheaApp(home)
    async with app.run_test(size=(100, 24)) as pilot:
        await until(pilot, lambda: app.state.loaded)
        await asyncio.sleep(0.3)
        svg = out / "first-steps.svg"
        write_svg(app, svg)
    return svg


def main() -> None:
    converter = shutil.which("rsvg-convert")
    if converter is None:
        raise SystemExit("rsvg-convert is missing: apt-get install librsvg2-bin")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        build(home)
        svgs = asyncio.run(shoot(home, Path(tmp), (120, 34), True))
        svgs += asyncio.run(shoot(home, Path(tmp), (80, 24), False))
        empty = Path(tmp) / "empty"
        empty.mkdir()
        svgs.append(asyncio.run(first_steps(empty, Path(tmp))))
        for svg in svgs:
            png = HERE / (svg.stem + ".png")
            subprocess.run([converter, "--zoom", "0.8", str(svg), "-o", str(png)], check=True)
            if shutil.which("pngquant"):  # a palette PNG is a quarter of the size
                subprocess.run(
                    ["pngquant", "--quality", "60-85", "--force", "--output", str(png), str(png)],
                    check=True,
                )
            print(f"{png}  {png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()

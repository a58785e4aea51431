"""Deterministic run directories for the TUI tests (through the real RunWriter), and waits."""

from __future__ import annotations

import math
import os
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rhea_engine.config import default_config
from rhea_engine.runs import rundir
from rhea_engine.runs.procs import this_host
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_engine.vocabulary import TASKS

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC: every event time counts up from here
NOW = T0 + 7200.0  # the clock the tests give the app: two hours after the first event


@contextmanager
def fixed_clock(start: float = T0) -> Iterator[list[float]]:
    """Make RunWriter stamp events with a counter clock (1 s per event) instead of now."""
    tick = [start]

    def now() -> float:
        tick[0] += 1.0
        return tick[0]

    saved = rundir.time
    rundir.time = types.SimpleNamespace(time=now)  # type: ignore[assignment]
    try:
        yield tick
    finally:
        rundir.time = saved


def epoch_metrics(epoch: int, scale: float = 1.0, lr: float = 1e-3) -> dict[str, float]:
    """Smoothly falling losses, as a training run would write them."""
    decay = math.exp(-epoch / 15.0)
    metrics = {
        "train_loss": scale * (0.5 * decay + 0.02),
        "test_loss": scale * (0.55 * decay + 0.025),
        "ELN_violation": 1e-3 * decay + 1e-6,
        "ELN_violation_test": scale * 1.3e-3 * decay + 2e-6,
        "learning_rate": lr * (0.5 if epoch > 30 else 1.0),
        "epoch_seconds": 90.0,
    }
    for index, task in enumerate(TASKS):
        metrics[f"{task}_test_loss"] = scale * (0.1 + 0.02 * index) * decay + 1e-3
        metrics[f"{task}_train_loss"] = scale * (0.09 + 0.02 * index) * decay + 1e-3
    return metrics


def make_run(
    store: Store,
    name: str,
    *,
    epochs: int,
    total: int = 40,
    status: str | None = "completed",
    sweep: str | None = None,
    lr: float = 1e-3,
    width: int = 64,
    scale: float = 1.0,
    host: str = "node07",
    pid: int = 4242,
    error: str | None = None,
    traceback: str | None = None,
    evaluation: dict[str, float] | None = None,
    log_lines: int = 3,
) -> Path:
    """Create a run in the store and write its events (start, epochs, final status)."""
    config: dict[str, Any] = default_config().to_dict()
    config.update(
        learning_rate=lr,
        epochs=total,
        device="cpu",
        **{f"width_{h}": width for h in ("shared", "stability", "growthrate", "density", "flux")},
    )
    row = store.create_run(config, name=name, sweep=sweep, status="running")
    assert row.path is not None
    with RunWriter(row.path) as writer:
        writer.start(
            pid=pid,
            host=host,
            device="cpu",
            total_epochs=total,
            git_commit="0123abcd",
            git_dirty=False,
            data=[],
            slurm_job_id=None,
            resumed_from_epoch=None,
        )
        for epoch in range(1, epochs + 1):
            writer.epoch(epoch, epoch_metrics(epoch, scale, lr))
            if epoch % 10 == 0:
                ckpt = row.path / "checkpoints" / f"epoch_{epoch:05d}.pt"
                writer.checkpoint(epoch, ckpt, "periodic")
        if evaluation:
            writer.evaluation(evaluation)
        if status is not None:
            fields: dict[str, Any] = {}
            if error:
                fields["error"] = error
            if traceback:
                fields["traceback"] = traceback
            writer.status(status, **fields)
    with open(row.path / rundir.STDOUT_FILE, "w") as log:
        for epoch in range(max(1, epochs - log_lines + 1), epochs + 1):
            log.write(f"epoch {epoch:4d}  train {epoch_metrics(epoch, scale)['train_loss']:.4e}\n")
    return row.path


def make_home(home: Path) -> Store:
    """Six runs covering every status mark; `live` is running in this very process."""
    store = Store(home)
    evaluation = {
        "model_ndens_loss": 0.012,
        "box3d_ndens_loss": 0.034,
        "identity_ndens_loss": 0.21,
        "model_growthrate_loss": 0.05,
        "box3d_growthrate_loss": 0.11,
        "identity_growthrate_loss": 0.4,
    }
    with fixed_clock():
        make_run(store, "base", epochs=40, evaluation=evaluation, sweep=None)
        make_run(store, "lr-a", epochs=40, sweep="lr", lr=1e-3, scale=0.9)
        make_run(store, "lr-b", epochs=40, sweep="lr", lr=3e-4, scale=0.7)
        make_run(
            store,
            "lr-c",
            epochs=25,
            sweep="lr",
            lr=1e-4,
            scale=1.2,
            status="diverged",
            error="The loss of task 'growthrate' became non-finite at epoch 25.",
        )
        make_run(
            store,
            "broken",
            epochs=3,
            status="failed",
            error="CUDA out of memory while allocating the batch.",
            traceback='Traceback (most recent call last):\n  File "train.py", line 1\n'
            "RuntimeError: CUDA out of memory",
        )
        make_run(store, "live", epochs=12, status=None, host=this_host(), pid=os.getpid())
    refresh(store)
    return store


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    """Let the app run until `predicate()` is true; fail after `timeout` seconds."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)
    return time.monotonic() - start


async def goto(pilot, handle: str) -> Any:  # type: ignore[no-untyped-def]
    """Put the runs table's cursor on `handle` once it is listed; the table."""
    from rhea_tui.widgets.runs_table import RunsTable

    table = pilot.app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: handle in table._layout)
    table.move_cursor(row=table._layout.index(handle))
    await pilot.pause()
    return table


def screen_text(app: Any) -> str:
    """The screen as plain text, line by line (what a terminal would show)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)

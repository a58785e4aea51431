"""A script logging through rhea_engine.tracking shows live in `rhea tui` and ends right."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from test_app import goto, make_app
from textual.widgets import Static
from tui_rundata import wait_for

from rhea_tui.widgets.plots import MetricPlot
from rhea_tui.widgets.runs_table import RunsTable

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from rhea_engine.tracking import start_run
    with start_run(name="mine", config={"epochs": 6, "learning_rate": 3e-4},
                   home=sys.argv[1], heartbeat_seconds=0.2) as run:
        for epoch in range(1, 7):
            run.log(epoch, {"train_loss": 2.0 / epoch, "test_loss": 3.0 / epoch,
                            "ndens_test_loss": 0.5 / epoch, "ELN_violation": 1e-5,
                            "learning_rate": 3e-4, "my_own_metric": float(epoch)})
            if epoch == 3:
                print("three", flush=True)
                sys.stdin.readline()  # the test decides what happens next
    """
)


def _start(home: Path) -> subprocess.Popen[str]:
    script = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(home)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert script.stdout is not None
    assert script.stdout.readline().strip() == "three"
    return script


def _status(app, handle: str) -> str:  # type: ignore[no-untyped-def]
    table = app.screen.query_one(RunsTable)
    return str(table.get_cell(handle, "status")) if handle in table._layout else ""


async def test_a_script_run_shows_live_and_completes(home: Path) -> None:
    script = _start(home)
    try:
        app = make_app(home)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(
                pilot, lambda: (r := app.state.row("mine")) is not None and r.last_epoch == 3
            )
            assert _status(app, "mine") == "▶ running"
            table = app.screen.query_one(RunsTable)
            assert str(table.get_cell("mine", "epoch")) == "3/6"
            await goto(pilot, "mine")
            await pilot.press("enter")
            loss = app.screen.query_one("#plot-loss", MetricPlot)
            await wait_for(pilot, lambda: len(loss.series.get("test", [])) == 3)
            tasks = app.screen.query_one("#plot-tasks", MetricPlot)
            logged = {task: len(points) for task, points in tasks.series.items() if points}
            assert logged == {"ndens": 3}  # the one task the script logs
            assert script.stdin is not None
            script.stdin.write("go\n")
            script.stdin.flush()
            assert script.wait(timeout=30) == 0
            await wait_for(pilot, lambda: len(loss.series["test"]) == 6, timeout=10)
            title = app.screen.query_one("#run-title", Static)
            await wait_for(pilot, lambda: "6/6" in str(title.render()), timeout=10)
            await pilot.press("escape")
            await wait_for(pilot, lambda: _status(app, "mine") == "✔ done", timeout=10)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()


async def test_a_killed_script_shows_lost(home: Path) -> None:
    script = _start(home)
    try:
        app = make_app(home)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: _status(app, "mine") == "▶ running", timeout=10)
            script.send_signal(signal.SIGKILL)  # no final status can be written
            script.wait(timeout=30)
            await wait_for(pilot, lambda: _status(app, "mine") == "? LOST", timeout=10)
            row = app.state.row("mine")
            assert row is not None and row.last_epoch == 3
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()

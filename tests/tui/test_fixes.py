"""Pilot tests of what `rhea tui` showed wrongly or did to the wrong run (issue 13, items 1-6).

Each drives the real app on a real home and checks what the user sees or which run an
action reaches; each failed on the code before its fix (the report of the change says how).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from textual.widgets import Static
from tui_rundata import NOW, epoch_metrics, fixed_clock, goto, make_run, screen_text, wait_for

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_engine.vocabulary import TASKS
from rhea_tui.app import RheaApp
from rhea_tui.format import epoch_ticks
from rhea_tui.screens.dialogs import ConfirmScreen
from rhea_tui.screens.run import RunScreen
from rhea_tui.widgets.plots import MetricPlot
from rhea_tui.widgets.runs_table import RunsTable


def make_app(home: Path) -> RheaApp:
    return RheaApp(home, clock=lambda: NOW, poll_interval=0.25)


# --- 1. the export's notification -----------------------------------------------------------
def write_checkpoint(run: Path, epoch: int) -> None:
    """A real (untrained) model checkpoint of the run's own config, as training writes one."""
    import torch

    from rhea_engine.checkpoint import FORMAT, save_checkpoint
    from rhea_engine.config import from_dict
    from rhea_engine.model import build_model
    from rhea_engine.runs.rundir import read_config

    config = read_config(run)["config"]
    torch.manual_seed(0)
    model = build_model(from_dict(config))
    ckpt = {"format": FORMAT, "model": model.state_dict(), "config": config, "epoch": epoch}
    save_checkpoint({**ckpt, "kind": "periodic"}, run / "checkpoints" / f"epoch_{epoch:05d}.pt")
    save_checkpoint({**ckpt, "kind": "periodic"}, run / "checkpoints" / "last.pt")


async def test_export_reports_each_quantity_not_the_largest_parity_entry(home: Path) -> None:
    store = Store(home)
    with fixed_clock():
        run = make_run(store, "small", epochs=12, width=8)
    refresh(store)
    store.close()
    write_checkpoint(run, 12)
    app = make_app(home)
    said: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        notify = app.notify

        def record(message: str, *args: object, **kwargs: object) -> None:
            said.append(message)
            notify(message, *args, **kwargs)  # type: ignore[arg-type]

        app.notify = record  # type: ignore[method-assign]
        await goto(pilot, "small")
        await pilot.press("e")
        await wait_for(pilot, lambda: any("exported to" in m for m in said), 120)
    message = next(m for m in said if "exported to" in m)
    assert "epoch 12" in message and str(run / "exports") in message
    # one figure per predicted quantity, as the model card records them; never the largest
    # entry of the parity dict (which holds the number of cells checked)
    card = json.loads(next((run / "exports").glob("*.json")).read_text())
    parity = card["parity"]
    shown = re.search(
        r"on (\d+) random physical cells: F4_final (\S+) of ntot, growth rate (\S+) relative, "
        r"stability (\S+)$",
        message,
    )
    assert shown is not None, message
    assert int(shown[1]) == parity["cells"]
    expected = ("max_F4_final_over_ntot", "max_rel_growthrate", "max_abs_stability")
    assert [float(shown[i]) for i in (2, 3, 4)] == [float(f"{parity[k]:.2e}") for k in expected]
    assert f"{parity['cells']:.1e}" not in message


# --- 2. actions land on the run the user chose ------------------------------------------------
async def test_the_cursor_stays_on_its_run_or_its_neighbour(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        table = await goto(pilot, "lr-c")
        with Store(home) as other:  # another front end deletes the selected run
            other.delete_run("lr-c")
        await wait_for(pilot, lambda: app.state.row("lr-c") is None)
        await pilot.pause()
        assert table.current_key() == "broken"  # its neighbour, not the top row
        await goto(pilot, "lr-b")
        await pilot.press("slash", *"lr-b", "enter")  # filtered: still the same run
        assert table.current_key() == "lr-b"
        await pilot.press("escape")  # the filter goes; the cursor stays on lr-b
        assert table._layout != ["lr-b"] and table.current_key() == "lr-b"
        for key, expected in (("end", "live"), ("home", "base"), ("G", "live"), ("g", "base")):
            await pilot.press(key)
            assert table.current_key() == expected, key


async def test_stop_asks_first_and_names_the_run(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "lr-a")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        assert "lr-a" in app.screen.question and "Stop" in app.screen.verb
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.state.row("lr-a").status == "completed"


# --- 3. the lr column is the configured rate --------------------------------------------------
async def test_lr_shows_the_configured_rate_and_lr_now_the_current_one(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        table = app.screen.query_one(RunsTable)
        row = app.state.row("base")
        assert row.config["learning_rate"] == 1e-3 and row.learning_rate == 5e-4  # halved
        assert str(table.get_cell("base", "lr")) == "1.0e-3"
        assert str(table.get_cell("base", "lr_now")) == "5.0e-4"
        assert str(table.get_cell("lr-b", "lr")) == "3.0e-4"


# --- 4. one "max ELN" everywhere -------------------------------------------------------------
def make_eln_run(home: Path) -> tuple[float, float]:
    """A run whose test ELN violation peaks mid-run and whose train violation is larger;
    returns (max of the test violation over epochs, its last value)."""
    store = Store(home)
    row = store.create_run({"epochs": 6}, name="eln", status="running")
    test_eln = [2e-4, 9e-4, 5e-4, 3e-4, 1e-4, 5e-5]
    with RunWriter(row.path) as writer:
        writer.start(device="cpu", total_epochs=6, data=[], pid=1, host="elsewhere")
        for epoch, value in enumerate(test_eln, start=1):
            metrics = epoch_metrics(epoch)
            metrics.update(ELN_violation=5e-3 / epoch, ELN_violation_test=value)
            writer.epoch(epoch, metrics)
        writer.status("completed")
    refresh(store)
    store.close()
    return max(test_eln), test_eln[-1]


async def test_eln_max_is_the_test_violation_over_all_epochs(home: Path) -> None:
    peak, last = make_eln_run(home)
    app = make_app(home)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.row("eln") is not None)
        table = app.screen.query_one(RunsTable)
        assert str(table.get_cell("eln", "eln")).strip() == "9.0e-4"
        await goto(pilot, "eln")
        await pilot.press("enter")
        title = app.screen.query_one("#run-title", Static)
        await wait_for(pilot, lambda: "max ELN 9.0e-4" in str(title.render()))
    assert app.state.row("eln").max_eln_violation == peak != last


# --- 5. a new home opens ---------------------------------------------------------------------
async def test_an_empty_home_opens_with_first_steps(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    home.mkdir()
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        panel = app.screen.query_one("#runs-empty", Static)
        await pilot.pause()
        assert panel.display and panel.region.height > 3
        text = screen_text(app)
        assert "No runs in" in text and "Press n" in text and "synthetic" in text
    assert list(home.iterdir()) == []  # looking creates nothing


# --- 6. plots: every task's key, marked gaps, a labelled log axis, even ticks -----------------
async def test_every_task_is_named_in_the_plot_key_at_80_and_120_columns(home: Path) -> None:
    labels = ("stab", "ndens", "fluxmag", "dir", "growth", "unphys")
    assert len(labels) == len(TASKS)
    for size in ((80, 24), (120, 36)):
        app = make_app(home)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.state.loaded)  # noqa: B023
            await goto(pilot, "base")
            await pilot.press("enter")
            plot = app.screen.query_one("#plot-tasks", MetricPlot)
            await wait_for(pilot, lambda: plot.draws > 0 and plot.point_count() == 240)  # noqa: B023
            await pilot.pause()
            lines = str(plot.render()).splitlines()
            key = " ".join(lines[: len(lines) - plot.size.height + 10])
            missing = [label for label in labels if f"▬ {label}" not in " ".join(lines)]
            assert not missing, (size, missing, key)
            assert lines[-1].split()[0] == "log"  # the log axis is labelled in its corner


async def test_non_finite_epochs_of_a_diverging_run_are_marked(home: Path) -> None:
    store = Store(home)
    row = store.create_run({"epochs": 10}, name="blowup", status="running")
    with RunWriter(row.path) as writer:
        writer.start(device="cpu", total_epochs=10, data=[], pid=1, host="elsewhere")
        for epoch in range(1, 9):
            metrics = epoch_metrics(epoch)
            if epoch >= 7:
                metrics.update(test_loss=math.inf if epoch == 7 else math.nan)
            writer.epoch(epoch, metrics)
        writer.status("diverged", error="The loss became non-finite.", epoch=7, task="ndens")
    refresh(store)
    store.close()
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.state.row("blowup") is not None)
        await goto(pilot, "blowup")
        await pilot.press("enter")
        assert isinstance(app.screen, RunScreen)
        plot = app.screen.query_one("#plot-loss", MetricPlot)
        await wait_for(pilot, lambda: plot.point_count() == 16 and plot.draws > 0)
        text = str(plot.render())
        assert "test: 2 non-finite" in text


def test_epoch_ticks_are_evenly_spaced_round_numbers() -> None:
    for first, last in ((1, 40), (1, 1000), (3, 17), (1, 7), (250, 1250)):
        ticks = epoch_ticks(first, last)
        steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
        assert len(steps) == 1 and 2 <= len(ticks) <= 6, (first, last, ticks)
        assert ticks[0] >= first and ticks[-1] <= last
        assert all(t % next(iter(steps)) == 0 for t in ticks), ticks

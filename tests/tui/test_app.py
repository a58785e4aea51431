"""Pilot tests of `rhea tui` against a real store and real run directories."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from textual.widgets import DataTable, Static
from tui_rundata import NOW, wait_for

from rhea_engine.runs.procs import this_host
from rhea_engine.runs.rows import IngestState
from rhea_engine.runs.store import Store
from rhea_tui.app import RheaApp
from rhea_tui.screens.compare import CompareScreen
from rhea_tui.screens.run import RunScreen
from rhea_tui.screens.runs import RunsScreen
from rhea_tui.widgets.plots import MetricPlot
from rhea_tui.widgets.runs_table import RunsTable


def make_app(home: Path) -> RheaApp:
    return RheaApp(home, clock=lambda: NOW, poll_interval=0.25)


def has_epochs(app: RheaApp, handle: str) -> bool:
    """True once the app lists the run and it has written an epoch (it may not be listed yet)."""
    row = app.state.row(handle)
    return row is not None and bool(row.last_epoch)


def kill_if_alive(pid: int) -> None:
    """Clean-up after a failed test: the worker may already have ended on its own."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


async def goto(pilot, handle: str) -> None:  # type: ignore[no-untyped-def]
    """Move the runs table's cursor onto `handle`."""
    table = pilot.app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: handle in table._layout)
    table.move_cursor(row=table._layout.index(handle))
    await pilot.pause()


async def test_runs_table_lists_every_run_with_its_status(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        table = app.screen.query_one(RunsTable)
        assert table._layout == ["base", "lr-a", "lr-b", "lr-c", "broken", "live"]
        statuses = {key: str(table.get_cell(key, "status")) for key in table._layout}
        assert statuses["live"] == "▶ running"
        assert statuses["broken"] == "✖ FAILED"
        assert statuses["lr-c"] == "↯ DIVERGED"
        assert str(table.get_cell("base", "epoch")) == "40/40"
        # filter by sweep, then group
        await pilot.press("slash", *"sweep:lr", "enter")
        assert table._layout == ["lr-a", "lr-b", "lr-c"]
        await pilot.press("escape")
        assert len(table._layout) == 6
        await pilot.press("slash", "[", "b", "enter")  # markup-like text is just text
        assert table._layout == [] and "filter [b" in str(
            app.screen.query_one("#runs-summary", Static).render()
        )
        await pilot.press("escape")
        await pilot.press("w")
        assert table._layout[0] == "sweep:" and "sweep:lr" in table._layout
        await pilot.press("w", "o")  # sort by test loss: the best run first
        assert table._layout[0] == "lr-b"


async def test_select_run_shows_its_plots(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "lr-b")
        await pilot.press("enter")
        assert isinstance(app.screen, RunScreen) and app.screen.handle == "lr-b"
        loss = app.screen.query_one("#plot-loss", MetricPlot)
        await wait_for(pilot, lambda: loss.point_count() == 80 and loss.draws > 0)
        tasks = app.screen.query_one("#plot-tasks", MetricPlot)
        assert len([s for s in tasks.series.values() if len(s) == 40]) == 6
        assert len(app.screen.query_one("#plot-lr", MetricPlot).series["lr"]) == 40
        assert len(app.screen.query_one("#plot-eln", MetricPlot).series["train"]) == 40
        title = str(app.screen.query_one("#run-title", Static).render())
        assert "lr-b" in title and "40/40" in title
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("enter")  # open it again: the whole series comes back
        loss = app.screen.query_one("#plot-loss", MetricPlot)
        await wait_for(pilot, lambda: loss.point_count() == 80)
        assert [e for e, _ in loss.series["test"]] == list(range(1, 41))


WRITER = textwrap.dedent(
    """
    import sys
    from rhea_engine.runs.rundir import RunWriter
    sys.path.insert(0, sys.argv[2])
    from tui_rundata import epoch_metrics
    with RunWriter(sys.argv[1]) as writer:
        writer.start(device="cpu", total_epochs=20, data=[])
        for epoch in range(1, 6):
            writer.epoch(epoch, epoch_metrics(epoch))
        print("ready", flush=True)
        sys.stdin.readline()
        for epoch in range(6, 11):
            writer.epoch(epoch, epoch_metrics(epoch))
        print("appended", flush=True)
        sys.stdin.readline()
        writer.status("completed")
    """
)


async def test_plots_follow_epochs_written_by_another_process(home: Path) -> None:
    store = Store(home)
    row = store.create_run({"epochs": 20}, name="grow", status="running")
    store.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(row.path), str(Path(__file__).parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "ready"
        app = make_app(home)
        app.poll_interval = 1.0  # the real refresh rate
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.state.row("grow") is not None)
            await goto(pilot, "grow")
            await pilot.press("enter")
            loss = app.screen.query_one("#plot-loss", MetricPlot)
            await wait_for(pilot, lambda: len(loss.series.get("test", [])) == 5)
            draws = loss.draws
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "appended"
            waited = await wait_for(
                pilot, lambda: len(loss.series["test"]) == 10 and loss.draws > draws, timeout=2.0
            )
            assert loss.series["test"][-1][0] == 10
            assert waited < 2.0
            assert "10/20" in str(app.screen.query_one("#run-title", Static).render())
    finally:
        if writer.stdin is not None:
            writer.stdin.write("done\n")
            writer.stdin.close()
        writer.wait(timeout=10)


async def test_compare_three_marked_runs(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "lr-a")
        await pilot.press("space", "space", "space", "c")
        assert isinstance(app.screen, CompareScreen)
        assert app.screen.handles == ["lr-a", "lr-b", "lr-c"]
        overlay = app.screen.query_one("#cmp-overlay", MetricPlot)
        await wait_for(pilot, lambda: all(overlay.series.get(h) for h in app.screen.handles))
        assert list(overlay.series) == ["lr-a", "lr-b", "lr-c"]
        assert len(app.screen.query(".multiple")) == 3
        params = app.screen.query_one("#cmp-params", DataTable)
        await wait_for(pilot, lambda: params.row_count > 0)
        names = [str(params.get_row_at(i)[0]) for i in range(params.row_count)]
        assert names == ["learning_rate"]
        metrics = app.screen.query_one("#cmp-metrics", DataTable)
        assert metrics.row_count == 3
        await pilot.press("m")
        assert "train_loss" in overlay.title
        await pilot.press("escape")
        await goto(pilot, "broken")
        await pilot.press("C")  # a run without a sweep: nothing to compare
        assert isinstance(app.screen, RunsScreen)
        await goto(pilot, "lr-b")
        await pilot.press("C")  # the whole sweep of the selected run
        assert isinstance(app.screen, CompareScreen) and app.screen.title_text == "sweep:lr"


FAILING = textwrap.dedent(
    """
    import sys, traceback
    from rhea_engine.runs.rundir import RunWriter
    with RunWriter(sys.argv[1]) as writer:
        writer.start(device="cpu", total_epochs=10, data=[])
        try:
            raise FloatingPointError("the density head produced an empty batch")
        except FloatingPointError as exc:
            writer.status("failed", error=f"FloatingPointError: {exc}",
                          traceback=traceback.format_exc())
            print("crashed at epoch 0", flush=True)
            sys.exit(1)
    """
)


async def test_failed_run_shows_its_error(home: Path) -> None:
    store = Store(home)
    row = store.create_run({"epochs": 10}, name="crash", status="running")
    store.close()
    assert row.path is not None
    with open(row.path / "stdout.log", "w") as log:
        code = subprocess.run([sys.executable, "-c", FAILING, str(row.path)], stdout=log).returncode
    assert code == 1
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.state.row("crash") is not None)
        table = app.screen.query_one(RunsTable)
        assert str(table.get_cell("crash", "status")) == "✖ FAILED"
        await goto(pilot, "crash")
        await pilot.press("enter")
        log = app.screen.query_one("#run-log-text", Static)
        await wait_for(pilot, lambda: "empty batch" in str(log.render()))
        text = str(log.render())
        assert "crashed at epoch 0" in text  # the tail of stdout.log
        assert "Traceback (most recent call last)" in text


def check_export(run: Path, epoch: int, said: list[str]) -> None:
    """The export holds the model of the run's last checkpoint: its predictions, computed
    here from the checkpoint itself, match the exported TorchScript's."""
    import torch

    from rhea_engine.checkpoint import load_checkpoint
    from rhea_engine.export import quiet_torchscript, random_physical_F4
    from rhea_engine.model import model_from_checkpoint

    exported = sorted((run / "exports").glob("*.pt"))
    assert [p.name for p in exported] == [f"{run.name}_epoch{epoch:05d}_cpu.pt"]
    assert any(str(exported[0]) in message for message in said)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == epoch
    model = model_from_checkpoint(ckpt).eval()
    F4 = random_physical_F4(64, model.NF, seed=7, dtype=next(model.parameters()).dtype)
    with quiet_torchscript():
        scripted = torch.jit.load(str(exported[0]))
    with torch.inference_mode():
        for eager, loaded in zip(model.predict_all(F4), scripted.predict_all(F4), strict=True):
            assert torch.allclose(eager, loaded, rtol=1e-5, atol=1e-6)


async def test_stop_from_the_tui_ends_the_run_as_stopped(home: Path, tmp_path: Path) -> None:
    from rhea_engine.config import resolve
    from rhea_engine.data.synth import synth_to_dir
    from rhea_engine.runs import launch

    synth_to_dir(tmp_path / "data", n=400, seed=1)
    config = resolve(
        shortcuts={
            "epochs": 100000,
            "width": 8,
            "device": "cpu",
            "nhidden": 0,
            "data": str(tmp_path / "data" / "asymptotic.h5"),
            "stable_data": str(tmp_path / "data" / "stable.h5"),
        },
        sets=["epoch_num_samples=256", "batch_size=128", "num_threads=1", "heartbeat_seconds=1"],
    )
    store = Store(home)
    store.create_run(config.to_dict(), name="worker")
    process = launch.start_worker(store, "worker", env={"OMP_NUM_THREADS": "1"})
    store.close()
    try:
        app = make_app(home)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: has_epochs(app, "worker"), 60)
            row = app.state.row("worker")
            assert row is not None and row.status == "running" and row.host == this_host()
            await goto(pilot, "worker")
            await pilot.press("s", "y")  # stop asks first
            await wait_for(pilot, lambda: app.state.row("worker").status != "running", 30)
            assert app.state.row("worker").status == "stopped"
            assert process.wait(timeout=10) == 0
            assert (home / "runs" / "worker" / "checkpoints" / "last.pt").is_file()
            stopped_at = app.state.row("worker").last_epoch
            # export the stopped run, then resume it and stop it again, all from the keys
            said: list[str] = []  # every message the app shows, kept past its timeout
            notify = app.notify

            def record(message: str, *args: object, **kwargs: object) -> None:
                said.append(message)
                notify(message, *args, **kwargs)  # type: ignore[arg-type]

            app.notify = record  # type: ignore[method-assign]
            await pilot.press("e")
            await wait_for(pilot, lambda: len(said) >= 2, 120)  # "Exporting…", then its end
            assert said[0].startswith("Exporting worker") and "exported to" in said[1], said
            check_export(home / "runs" / "worker", stopped_at, said)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.state.row("worker").last_epoch > stopped_at + 1, 60)
            assert app.state.row("worker").status == "running"
            await pilot.press("s", "y")  # stop asks first
            await wait_for(pilot, lambda: app.state.row("worker").status == "stopped", 30)
    finally:
        if process.poll() is None:
            os.kill(process.pid, 9)
            process.wait()
        store = Store(home)
        row = store.get_run("worker")
        store.close()
        if row.status == "running" and row.pid:
            kill_if_alive(row.pid)


async def test_delete_asks_first(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "broken")
        await pilot.press("d", "n")
        assert app.state.row("broken") is not None
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: app.state.row("broken") is None)
        assert not (home / "runs" / "broken").exists()


async def test_new_run_form_shows_validation_errors(home: Path) -> None:
    runs_before = sorted(p.name for p in (home / "runs").iterdir())
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await pilot.press("n")
        from rhea_tui.screens.new_run import NewRunScreen

        assert isinstance(app.screen, NewRunScreen)
        form = app.screen
        launch = form.query_one("#launch")
        assert not launch.disabled  # the defaults are a valid run
        lr = form.query_one("#field-lr")
        lr.value = "-1"
        await pilot.pause()
        error = form.query_one("#form-error", Static)
        assert "learning_rate" in str(error.render()) and lr.has_class("-invalid")
        assert launch.disabled
        await pilot.press("ctrl+s")  # refused while a field is wrong
        await pilot.pause()
        assert app.screen is form and not form.launching
        lr.value = "1e-4"
        form.query_one("#field-data").value = "/nowhere/data.h5"
        await pilot.pause()
        assert "/nowhere/data.h5" in str(error.render()) and launch.disabled
        form.query_one("#field-data").value = ""
        await pilot.pause()
        assert not launch.disabled and not lr.has_class("-invalid")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
    assert sorted(p.name for p in (home / "runs").iterdir()) == runs_before  # nothing started


async def test_new_run_form_launches_a_worker(home: Path, tmp_path: Path) -> None:
    """The form starts a real worker; without detach, quitting the TUI stops that run."""
    from rhea_engine.data.synth import synth_to_dir
    from rhea_engine.runs import launch
    from rhea_tui.screens.new_run import NewRunScreen

    synth_to_dir(tmp_path / "data", n=400, seed=2)
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, NewRunScreen)
        values = {
            "name": "fromform",
            "lr": "3e-4",
            "epochs": "100000",
            "width": "8",
            "nhidden": "0",
            "device": "cpu",
            "data": str(tmp_path / "data" / "asymptotic.h5"),
            "stable_data": str(tmp_path / "data" / "stable.h5"),
        }
        for field, value in values.items():
            form.query_one(f"#field-{field}").value = value
        form.query_one("#field-detach").value = False
        await pilot.pause()
        assert not form.query_one("#launch").disabled
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 30)
        await wait_for(pilot, lambda: has_epochs(app, "fromform"), 90)
        row = app.state.row("fromform")
        assert row is not None and row.status == "running"
        assert row.config["learning_rate"] == 3e-4 and row.config["width_flux"] == 8
        assert "fromform" in app.state.attached
    store = Store(home)
    try:
        final = launch.wait_final(store, "fromform", 30)
        assert final.status == "stopped"
    finally:
        row = store.get_run("fromform")
        if row.status == "running" and row.pid:
            kill_if_alive(row.pid)
        store.close()


class SlowStore(Store):
    """The real store on a slow file system: each refresh takes a second."""

    active = 0
    peak = 0

    def ingest_states(self, handles: list[str] | None = None) -> list[IngestState]:
        SlowStore.active += 1
        SlowStore.peak = max(SlowStore.peak, SlowStore.active)
        try:
            time.sleep(1.0)
            return super().ingest_states(handles)
        finally:
            SlowStore.active -= 1


async def test_polls_never_overlap_nor_block_the_keys(home: Path) -> None:
    app = RheaApp(home, clock=lambda: NOW, poll_interval=0.05, store_factory=SlowStore)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded, 10)
        await wait_for(pilot, lambda: SlowStore.active == 1, 10)
        await pilot.press("w")  # handled while the poll still reads
        table = app.screen.query_one(RunsTable)
        assert "sweep:lr" in table._layout
        assert SlowStore.active == 1
        await goto(pilot, "lr-a")
        await pilot.press("enter", "escape", "enter")  # each asks for an immediate poll
        polls = app.state.polls
        await wait_for(pilot, lambda: app.state.polls >= polls + 3, 15)
        assert SlowStore.peak == 1


async def test_details_panel_replaces_the_plots_on_a_small_terminal(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "base")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "base" in app.state.details)
        details = app.screen.query_one("#run-details")
        plots = app.screen.query_one("#run-plots")
        assert details.styles.display == "none" and plots.styles.display == "block"
        await pilot.press("i")
        assert details.styles.display == "block" and plots.styles.display == "none"
        await pilot.pause()
        shown = app.export_screenshot()
        assert "node07" in shown and "epoch_00040.pt" in shown


async def test_question_mark_shows_the_keys_of_the_screen_below(home: Path) -> None:
    from rhea_tui.screens.dialogs import HelpScreen

    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        for opened, key_text in ((None, "compare the marked runs"), ("enter", "log tail")):
            if opened:
                await pilot.press(opened)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert any(key_text in text for _, text in app.screen.keys)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

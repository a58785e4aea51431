"""Pilot tests of what a monitor is expected to do (issue 13, items 7-13): notifications,
sweep columns, the full-screen log, GPU figures, the form, copying, large terminals."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static, TextArea
from tui_rundata import NOW, epoch_metrics, fixed_clock, goto, make_run, screen_text, wait_for

from rhea_engine.runs.procs import this_host
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import STDOUT_FILE, RunWriter
from rhea_engine.runs.store import Store
from rhea_tui.actions import resume_point
from rhea_tui.app import RheaApp
from rhea_tui.screens.log import LogScreen
from rhea_tui.screens.new_run import NewRunScreen
from rhea_tui.screens.run import RunScreen
from rhea_tui.screens.runs import RunsScreen
from rhea_tui.widgets.runs_table import RunsTable


def make_app(home: Path, **kwargs: object) -> RheaApp:
    return RheaApp(home, clock=lambda: NOW, poll_interval=0.25, **kwargs)  # type: ignore[arg-type]


def recorder(app: RheaApp) -> list[tuple[str, dict[str, object]]]:
    """Every notification the app shows, with its keywords (kept past its timeout)."""
    said: list[tuple[str, dict[str, object]]] = []
    notify = app.notify

    def record(message: str, *args: object, **kwargs: object) -> None:
        said.append((message, kwargs))
        notify(message, *args, **kwargs)  # type: ignore[arg-type]

    app.notify = record  # type: ignore[method-assign]
    return said


# --- 7. notifications -----------------------------------------------------------------------
async def test_a_run_that_ends_is_announced_with_a_toast_and_the_bell(home: Path) -> None:
    app = make_app(home, bell=True)
    said = recorder(app)
    bells = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        assert not said  # what had ended before the TUI opened is no news
        with RunWriter(home / "runs" / "live") as writer:
            writer.status("diverged", error="The loss became non-finite.", epoch=13, task="ndens")
        await wait_for(pilot, lambda: any("live" in m for m, _ in said))
        message, kwargs = next((m, k) for m, k in said if "live" in m)
        assert message.startswith("live DIVERGED at epoch 13 (task ndens)")
        assert kwargs["severity"] == "error" and bells == [1]
        await pilot.press("b")  # the bell off: the next one is quiet
        assert app.state.bell is False


# --- 8. columns that matter in a sweep --------------------------------------------------------
async def test_grouping_shows_the_swept_parameters_best_loss_epoch_time_and_eta(
    home: Path,
) -> None:
    store = Store(home)
    with fixed_clock():
        make_run(store, "w-32", epochs=40, sweep="width", width=32)
        make_run(store, "w-128", epochs=40, sweep="width", width=128)
    refresh(store)
    store.close()
    app = make_app(home)
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.row("w-128") is not None)
        table = app.screen.query_one(RunsTable)
        flat_width = table.columns["run"].width
        keys = [c.key for c in table.columns_shown]
        assert "param:width" not in keys and {"best", "epoch_s", "eta"} <= set(keys)
        assert str(table.get_cell("live", "eta")).strip() == "42m00s"  # 28 epochs x 90 s
        assert str(table.get_cell("base", "eta")).strip() == "-"  # finished
        await pilot.press("w")
        keys = [c.key for c in table.columns_shown]
        assert keys[keys.index("lr") + 1] == "param:width"  # learning_rate is the lr column
        assert str(table.get_cell("w-128", "param:width")).strip() == "128"
        assert str(table.get_cell("w-32", "epoch_s")).strip() == "1m30s"
        header = table.get_cell("sweep:width", "run")
        assert str(header) == "▾ width (2)"
        assert table.columns["run"].width > flat_width  # the group headers are longer
        await pilot.press("w")  # back to the flat list: its columns as narrow as before
        await pilot.pause()
        assert table.columns["run"].width == flat_width


# --- 9. the full-screen log ------------------------------------------------------------------
async def test_the_full_log_follows_new_lines_and_searches(home: Path) -> None:
    log = home / "runs" / "live" / STDOUT_FILE
    log.write_text("".join(f"epoch {e:4d}  loss {1 / e:.3e}\n" for e in range(1, 301)))
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "live")
        await pilot.press("L")
        assert isinstance(app.screen, LogScreen)
        area = app.screen.query_one(TextArea)
        await wait_for(pilot, lambda: "epoch  300" in area.text)
        assert area.text.count("\n") == 300 and app.screen.following
        with open(log, "a") as handle:
            handle.write("epoch  301  loss nan\n")
        await wait_for(pilot, lambda: "epoch  301" in area.text)
        assert area.cursor_location[0] == 301  # still following: the cursor is at the end
        await pilot.press("slash", *"EPOCH  12", "enter")
        screen = app.screen
        assert screen.matches and screen.current_match >= 0
        assert area.selected_text.lower() == "epoch  12"
        first = area.cursor_location
        assert "match 1/" in str(screen.query_one("#log-title", Static).render())
        await pilot.press("n")
        assert area.cursor_location != first and area.selected_text.lower() == "epoch  12"
        assert "match 2/" in str(screen.query_one("#log-title", Static).render())
        assert not screen.following
        with open(log, "a") as handle:
            handle.write("epoch  302\n")
        await wait_for(pilot, lambda: "epoch  302" in area.text)
        assert area.selected_text.lower() == "epoch  12"  # reading on is not interrupted
        await pilot.press("G")
        assert screen.following
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


# --- 10. GPU figures -------------------------------------------------------------------------
def gpu_run(home: Path) -> None:
    store = Store(home)
    row = store.create_run({"epochs": 20, "device": "cuda:0"}, name="gpu-run", status="running")
    with RunWriter(row.path) as writer:
        writer.start(device="cuda:0", total_epochs=20, data=[], host=this_host(), pid=os.getpid())
        writer.epoch(1, epoch_metrics(1))
        device = {"index": 3, "name": "NVIDIA H200", "utilization": 87.0}
        device |= {"memory_used": 40e9, "memory_total": 141e9, "process_memory": 12.3e9}
        writer.gpu([device])
    refresh(store)
    store.close()


async def test_gpu_figures_show_per_run_and_per_device_only_when_recorded(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        table = app.screen.query_one(RunsTable)
        assert "gpu" not in [c.key for c in table.columns_shown]
        assert not app.screen.query_one("#runs-devices").display
    gpu_run(home)
    app = make_app(home)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.row("gpu-run") is not None)
        table = app.screen.query_one(RunsTable)
        await pilot.pause()
        assert str(table.get_cell("gpu-run", "gpu")) == "87% 12.3G"
        assert str(table.get_cell("live", "gpu")) == "-"
        devices = str(app.screen.query_one("#runs-devices", Static).render())
        assert f"GPU {this_host()}:3 NVIDIA H200  87% busy  40.0G/141.0G  gpu-run" in devices


def test_rhea_show_prints_the_gpu_figures(home: Path) -> None:
    from typer.testing import CliRunner

    from rhea_tui.cli import app

    gpu_run(home)
    shown = " ".join(CliRunner().invoke(app, ["show", "gpu-run"]).output.split())
    assert "gpu NVIDIA H200 #3: 87% busy, 40.0G of 141.0G, this run 12.3G" in shown


# --- 11. the new-run form --------------------------------------------------------------------
async def test_the_form_clones_a_run_and_takes_any_key(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(100, 36)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "lr-b")
        await pilot.press("N")
        form = app.screen
        assert isinstance(form, NewRunScreen)

        def field(name: str) -> Input:
            return form.query_one(f"#field-{name}", Input)

        assert field("lr").value == "0.0003" and field("epochs").value == "40"
        assert field("width").value == "64" and field("device").value == "cpu"
        assert field("batch_size").value == "4096" and field("samples").value == "200000"
        field("more").value = "weight_decay=1e-5 activation=gelu"
        field("batch_size").value = "512"
        await pilot.pause()
        assert form.resolved is not None and form.resolved["weight_decay"] == 1e-5
        assert form.resolved["batch_size"] == 512 and form.resolved["activation"] == "gelu"
        field("more").value = "weight_decay=1e-5 no_such_key=3"
        await pilot.pause()
        error = str(form.query_one("#form-error", Static).render())
        assert "no_such_key" in error and field("more").has_class("-invalid")
        field("more").value = "oops"
        await pilot.pause()
        assert "'oops' is not key=value" in str(form.query_one("#form-error", Static).render())
        await pilot.press("escape")


async def test_the_form_warns_before_training_on_a_login_node(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    app = make_app(home)
    async with app.run_test(size=(100, 36)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await pilot.press("n")
        form = app.screen
        form.query_one("#field-device", Input).value = "cpu"
        await pilot.pause()
        warning = form.query_one("#form-warning", Static)
        assert warning.display and "login node" in str(warning.render())
        assert not form.query_one("#launch").disabled  # a warning, not an error
        monkeypatch.setenv("SLURM_JOB_ID", "1234")  # inside a Slurm job: a compute node
        form.query_one("#field-seed", Input).value = "7"
        await pilot.pause()
        assert not warning.display


async def test_the_form_starts_a_grid_sweep_through_the_engine(
    home: Path, tiny_data: tuple[Path, Path]
) -> None:
    app = make_app(home)
    async with app.run_test(size=(100, 36)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, NewRunScreen)
        values = {
            "name": "formgrid",
            "lr": "1e-3,3e-4",
            "epochs": "1",
            "batch_size": "250",
            "samples": "500",
            "width": "8",
            "device": "cpu",
            "data": str(tiny_data[0]),
            "stable_data": str(tiny_data[1]),
        }
        for name, value in values.items():
            form.query_one(f"#field-{name}", Input).value = value
        await pilot.pause()
        plan = str(form.query_one("#form-plan", Static).render())
        assert "a grid sweep of 2 run(s), here" in plan, plan
        assert str(form.query_one("#launch").label) == "Launch sweep (Ctrl+S)"
        form.query_one("#field-slurm").value = True  # the Slurm path: planned, not submitted
        form.query_one("#field-partition", Input).value = "debug"
        form.query_one("#field-time", Input).value = "00:10:00"
        await pilot.pause()
        assert "on Slurm partition debug" in str(form.query_one("#form-plan", Static).render())
        form.query_one("#field-slurm").value = False
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewRunScreen), timeout=30)
    with Store(home) as store:
        rows = {r.name: r.config["learning_rate"] for r in store.list_runs(sweep="formgrid")}
        assert rows == {"formgrid-1": 1e-3, "formgrid-2": 3e-4}
        spec = next(s for s in store.sweeps() if s["name"] == "formgrid")["spec"]
        deadline = time.monotonic() + 120  # the supervisor runs both tiny trials to the end
        while time.monotonic() < deadline:
            refresh(store)
            if all(r.is_final for r in store.list_runs(sweep="formgrid")):
                break
            time.sleep(0.5)
        statuses = [r.status for r in store.list_runs(sweep="formgrid")]
    assert spec["search"] == "grid" and statuses == ["completed", "completed"]


# --- 12. copy, and the space large terminals have ----------------------------------------------
async def test_y_and_Y_copy_the_handle_and_the_directory(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await goto(pilot, "lr-b")
        await pilot.press("y")
        assert app.clipboard == "lr-b"
        await pilot.press("Y")
        assert app.clipboard == str(home / "runs" / "lr-b")


async def test_large_terminals_get_a_wider_panel_and_a_taller_log(home: Path) -> None:
    sizes = {}
    for size in ((120, 36), (200, 60)):
        app = make_app(home)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.state.loaded)  # noqa: B023
            await goto(pilot, "base")
            await pilot.press("enter")
            assert isinstance(app.screen, RunScreen)
            await pilot.pause()
            details = app.screen.query_one("#run-details").region
            log = app.screen.query_one("#run-log").region
            sizes[size] = (details.width, log.height)
    assert sizes[(200, 60)][0] > sizes[(120, 36)][0]
    assert sizes[(200, 60)][1] >= 2 * sizes[(120, 36)][1]


# --- 13. the small things --------------------------------------------------------------------
async def test_footer_group_headers_and_esc_at_80_columns(home: Path) -> None:
    app = make_app(home)
    said = recorder(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await wait_for(pilot, lambda: "q Quit" in screen_text(app).splitlines()[-1])
        await pilot.press("w")
        await wait_for(pilot, lambda: "▾ lr (3)" in screen_text(app))
        assert "↯1" in screen_text(app)
        await pilot.press("down", "space", "space")
        assert len(app.screen.marked) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: "Cleared 2 marks." in [m for m, _ in said])
        assert not app.screen.marked
        await pilot.press("escape")
        await wait_for(pilot, lambda: "No filter or marks to clear." in [m for m, _ in said])


def test_resume_says_from_which_epoch(home: Path) -> None:
    with Store(home) as store:
        refresh(store)
        lr_c = store.get_run("lr-c")  # diverged at epoch 25, last checkpoint at 20
        broken = store.get_run("broken")
    assert resume_point(lr_c) == "from epoch 20; epochs 21-25 train again"
    assert resume_point(broken) == "from scratch (no checkpoint)"


# --- the sweep comparison's Pareto front (rhea_engine.pareto) ---------------------------------
def make_sweep(home: Path, name: str, objectives: list[str], points: dict[str, tuple]) -> None:
    """A sweep whose trials reach (test loss, test ELN violation); None: still running."""
    with Store(home) as store:
        spec = {"objectives": [{"name": o, "direction": "minimize"} for o in objectives]}
        store.create_sweep(name, spec)
        for run, point in points.items():
            row = store.create_run({"learning_rate": len(run) * 1e-4}, name=run, sweep=name)
            assert row.path is not None
            with RunWriter(row.path) as writer:
                writer.start(pid=1, host="elsewhere", device="cpu", total_epochs=1, data=[])
                if point is None:
                    continue
                writer.epoch(1, {"test_loss": point[0], "ELN_violation_test": point[1]})
                writer.status("completed")
        refresh(store)


async def test_a_sweep_with_two_objectives_shows_its_pareto_front(tmp_path: Path) -> None:
    from rhea_tui.screens.compare import CompareScreen

    home = tmp_path / "home"
    home.mkdir()
    points = {"t-a": (0.1, 3e-3), "t-bb": (0.2, 1e-3), "t-ccc": (0.3, 2e-3), "t-dddd": None}
    make_sweep(home, "two", ["test_loss", "eln_violation"], points)
    make_sweep(home, "one", ["test_loss"], {"u-a": (0.1, 3e-3), "u-bb": (0.2, 1e-3)})
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await app.push_screen(CompareScreen(app.state, list(points), "sweep:two", sweep="two"))
        await wait_for(pilot, lambda: app.screen.query_one("#cmp-pareto").has_class("shown"))
        table = app.screen.query_one("#cmp-pareto-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        header = [str(c.label) for c in table.columns.values()]
        assert header[:4] == ["", "run", "test_loss (min)", "eln_violation (min)"]
        assert "learning_rate" in header  # the swept parameter beside the objectives
        marks = {str(table.get_row_at(i)[1]): table.get_row_at(i)[0] for i in range(3)}
        assert marks == {"t-a": "★", "t-bb": "★", "t-ccc": ""}  # t-ccc: t-bb beats it on both
        left = str(app.screen.query_one("#cmp-pareto-left", Static).render())
        assert "t-dddd (running" in left
        await pilot.press("escape")
        await app.push_screen(CompareScreen(app.state, ["u-a", "u-bb"], "sweep:one", sweep="one"))
        await wait_for(pilot, lambda: app.screen.query_one("#cmp-metrics", DataTable).row_count)
        await pilot.pause(0.3)
        assert not app.screen.query_one("#cmp-pareto").has_class("shown")  # one objective

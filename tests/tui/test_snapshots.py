"""Snapshot tests of each screen at 80x24 and 160x48, with fixed data and a frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_rundata import NOW

from rhea_tui.app import RheaApp
from rhea_tui.widgets.runs_table import RunsTable


def snap_app(home: Path) -> RheaApp:
    return RheaApp(home, clock=lambda: NOW, poll_interval=0.5)


async def _until(pilot, predicate) -> None:  # type: ignore[no-untyped-def]
    from tui_rundata import wait_for

    await wait_for(pilot, predicate, timeout=10)


def loaded(pilot) -> object:  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _until(pilot, lambda: pilot.app.state.loaded)

    return run


async def _open(pilot, handle: str) -> None:  # type: ignore[no-untyped-def]
    await _until(pilot, lambda: pilot.app.state.loaded)
    table = pilot.app.screen.query_one(RunsTable)
    table.move_cursor(row=table._layout.index(handle))
    await pilot.press("enter")
    await _until(
        pilot,
        lambda: (
            handle in pilot.app.state.details and len(pilot.app.state.series.get(handle, {})) >= 10
        ),
    )
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_runs_screen(snap_compare, home: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _until(pilot, lambda: pilot.app.state.loaded)
        await pilot.press("space")  # one marked run

    assert snap_compare(snap_app(home), terminal_size=size, run_before=run_before)


def test_runs_screen_grouped(snap_compare, home: Path) -> None:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _until(pilot, lambda: pilot.app.state.loaded)
        await pilot.press("w")

    assert snap_compare(snap_app(home), terminal_size=(100, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_run_screen(snap_compare, home: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot, "base")

    assert snap_compare(snap_app(home), terminal_size=size, run_before=run_before)


def test_run_screen_details_narrow(snap_compare, home: Path) -> None:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot, "base")
        await pilot.press("i")

    assert snap_compare(snap_app(home), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_compare_screen(snap_compare, home: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _until(pilot, lambda: pilot.app.state.loaded)
        table = pilot.app.screen.query_one(RunsTable)
        table.move_cursor(row=table._layout.index("lr-a"))
        await pilot.press("C")
        await _until(
            pilot,
            lambda: (
                all(len(pilot.app.state.series.get(h, {})) >= 10 for h in ("lr-a", "lr-b", "lr-c"))
                and all(h in pilot.app.state.details for h in ("lr-a", "lr-b", "lr-c"))
            ),
        )
        await pilot.pause(0.1)

    assert snap_compare(snap_app(home), terminal_size=size, run_before=run_before)


def test_new_run_form_with_error(snap_compare, home: Path) -> None:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _until(pilot, lambda: pilot.app.state.loaded)
        await pilot.press("n")
        await pilot.pause()
        for field in pilot.app.screen.query("Input"):
            field.cursor_blink = False  # a blinking cursor would make the picture vary
        await pilot.press("ctrl+a", "ctrl+k", *"-3")

    assert snap_compare(snap_app(home), terminal_size=(80, 24), run_before=run_before)

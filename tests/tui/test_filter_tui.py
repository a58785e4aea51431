"""The runs screen's filter box: expressions matched by SQLite through the poll, plain words,
mistakes shown with a caret; and the state model's matches without Textual."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static
from tui_rundata import NOW, wait_for

from rhea_engine.runs.store import Store
from rhea_tui.app import RheaApp
from rhea_tui.filtering import read_filter
from rhea_tui.state import TuiState
from rhea_tui.widgets.runs_table import RunsTable

ALL = ["base", "lr-a", "lr-b", "lr-c", "broken", "live"]


async def test_expression_words_and_mistakes(home: Path) -> None:
    with Store(home) as store:
        store.tag("base", add=["keep"])
    app = RheaApp(home, clock=lambda: NOW, poll_interval=0.25)
    async with app.run_test(size=(140, 32)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        table = app.screen.query_one(RunsTable)
        error = app.screen.query_one("#runs-filter-error", Static)
        assert str(table.get_cell("base", "tags")) == "keep"
        await pilot.press("slash", *"sweep = lr and learning_rate < 1e-3")
        await wait_for(pilot, lambda: table._layout == ["lr-b", "lr-c"])
        assert app.state.where == "sweep = lr and learning_rate < 1e-3"
        assert not error.has_class("shown")
        # a mistake: the box says where, the table keeps the latest filter that worked
        await pilot.press(*" and")
        await pilot.pause()
        assert error.has_class("shown")
        shown = str(error.render())
        typed = "sweep = lr and learning_rate < 1e-3 and"
        assert shown.splitlines()[0] == "  " + typed
        assert shown.splitlines()[1] == "  " + " " * len(typed) + "^"
        assert "expected a key" in shown
        assert table._layout == ["lr-b", "lr-c"]
        await pilot.press(*" learning_rate < 2e-4", "enter")
        await wait_for(pilot, lambda: table._layout == ["lr-c"])
        summary = app.screen.query_one("#runs-summary", Static)
        assert "learning_rate < 2e-4" in str(summary.render())
        # a run that starts to match shows without typing anything
        with Store(home) as store:
            store.tag("lr-c", add=["slow"])
        await pilot.press("slash", *["backspace"] * 40, *"tag = keep or tag = slow", "enter")
        await wait_for(pilot, lambda: table._layout == ["base", "lr-c"])
        with Store(home) as store:
            store.tag("lr-a", add=["slow"])
        await wait_for(pilot, lambda: table._layout == ["base", "lr-a", "lr-c"])
        # plain words are substrings of names, sweeps, statuses, hosts and tags
        await pilot.press("slash", *["backspace"] * 40, *"lr-", "enter")
        await wait_for(pilot, lambda: table._layout == ["lr-a", "lr-b", "lr-c"])
        assert app.state.where is None
        await pilot.press("slash", *["backspace"] * 10, *"keep", "enter")
        await wait_for(pilot, lambda: table._layout == ["base"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: table._layout == ALL)


def test_state_matches_follow_the_expression_and_the_runs(home: Path) -> None:
    state = TuiState(home)
    try:
        state.refresh()
        assert state.matches is None
        state.where = "status = completed"
        state.refresh()
        names = {row.name for row in state.runs if row.id in (state.matches or set())}
        assert names == {"base", "lr-a", "lr-b"}
        version = state.matched_version
        assert state.request().matched_where == "status = completed"
        state.refresh()  # nothing changed: the poll does not match again
        assert state.matched_version == version
        with Store(home) as store:
            store.set_status("lr-c", "completed")
        state.refresh()
        names = {row.name for row in state.runs if row.id in (state.matches or set())}
        assert names == {"base", "lr-a", "lr-b", "lr-c"}
    finally:
        state.close()


def test_box_text_is_an_expression_only_with_an_operator() -> None:
    assert read_filter("lr sweep:x status:running").words == ["lr"]
    assert read_filter("status = running").expression == "status = running"
    typed = read_filter("best < oops")
    assert typed.error is not None and typed.error.position == 7 and typed.is_expression
    assert read_filter("colour = red", ["colour"]).expression == "colour = red"
    assert read_filter("colour = red").error is not None

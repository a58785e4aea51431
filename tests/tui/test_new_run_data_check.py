"""The new-run form refuses a data file training cannot read, before a run exists."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from textual.widgets import Static
from tui_rundata import NOW, wait_for

from rhea_tui.app import RheaApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from bad_data_files import all_nonfinite  # noqa: E402


def _run_count(home: Path) -> int:
    with sqlite3.connect(home / "runs.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


async def test_form_shows_the_data_error_and_starts_nothing(home: Path, tmp_path: Path) -> None:
    from rhea_engine.data.synth import synth_to_dir
    from rhea_tui.screens.new_run import NewRunScreen

    synth_to_dir(tmp_path / "good", n=300, seed=2)
    bad = all_nonfinite(tmp_path)
    runs_before = sorted(p.name for p in (home / "runs").iterdir())
    count_before = _run_count(home)
    app = RheaApp(home, clock=lambda: NOW, poll_interval=0.25)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.loaded)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, NewRunScreen)
        form.query_one("#field-name").value = "from-bad-data"
        form.query_one("#field-device").value = "cpu"
        form.query_one("#field-data").value = str(bad)
        form.query_one("#field-stable_data").value = str(tmp_path / "good" / "stable.h5")
        await pilot.pause()
        await pilot.press("ctrl+s")
        error = form.query_one("#form-error", Static)
        await wait_for(pilot, lambda: "non-finite" in str(error.render()), 30)
        assert str(bad) in " ".join(str(error.render()).split())
        assert app.screen is form  # the form stays open for a fix
    assert sorted(p.name for p in (home / "runs").iterdir()) == runs_before
    assert _run_count(home) == count_before

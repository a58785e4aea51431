"""rhea_tui.format: one look per status in both front ends, the number formats, ages, and a
runs-listing column that is added in one place only."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from rhea_engine.runs.store import Store
from rhea_engine.vocabulary import STATUSES
from rhea_tui import format as fmt
from rhea_tui.commands._runs_render import runs_table
from rhea_tui.widgets.runs_table import row_cells

NOW = 2_000_000_000.0


def rows_of(home: Path) -> list:  # type: ignore[type-arg]
    with Store(home) as store:
        return store.list_runs()


def style_of(text, needle: str) -> str:  # type: ignore[no-untyped-def]
    """The style of the span that starts where `needle` does in a rich Text."""
    start = text.plain.index(needle)
    return " ".join(str(span.style) for span in text.spans if span.start == start)


def test_every_status_has_one_mark_and_one_colour() -> None:
    assert set(fmt.STATUS_MARKS) == set(STATUSES) == set(fmt.STATUS_STYLES)
    marks = [fmt.status_mark(s) for s in STATUSES]
    assert len(set(marks)) == len(marks)  # they read apart without colour
    assert fmt.status_label("running") == "▶ running"
    assert str(fmt.status_text("failed", marked=False)) == "failed"


def test_cli_and_tui_colour_a_status_alike(home: Path) -> None:
    rows = {row.name: row for row in rows_of(home)}
    listing = runs_table(list(rows.values()), width=160, now=NOW)
    for name in ("live", "base", "lr-c", "broken"):
        status = rows[name].status
        line = next(line for line in listing.split("\n") if line.plain.startswith(name + " "))
        columns = fmt.tui_columns(160, list(rows.values()), now=NOW)
        tui = {str(c): c.style for c in row_cells(rows[name], False, NOW, columns)}
        assert style_of(line, status) == fmt.status_style(status) == tui[fmt.status_label(status)]
    assert fmt.status_style("running") != fmt.status_style("completed")


def test_number_formats_and_ages() -> None:
    assert [fmt.compact(v) for v in (1.234e-4, 0.3512, 12.34, 0.0, None, math.nan)] == [
        "1.2e-4",
        "0.351",
        "12.3",
        "0",
        "-",
        "nan",
    ]
    assert [fmt.sig(v) for v in (0.0632123, 7.0512e-5, None)] == ["0.0632", "7.05e-05", "-"]
    assert [fmt.sci(v) for v in (0.0632, math.nan, None)] == ["6.320e-02", "nan", "-"]
    assert fmt.sci(0.0632, 1) == "6.3e-02"
    assert fmt.cell(["/data/a.h5", "/data/b.h5"]) == "a.h5,b.h5" and fmt.cell(40) == "40"
    assert fmt.cell(1e-3, lambda v: fmt.compact(v, 3)) == "1.00e-3"
    # rounded down, so a run never looks older than it is ("60m" for 59 minutes 59 seconds)
    assert [fmt.age(s) for s in (45.9, 90, 3599, 7200, 3 * 86400, -5, None)] == [
        "45s",
        "1m",
        "59m",
        "2h",
        "3d",
        "0s",
        "-",
    ]


def test_a_column_added_in_one_place_shows_in_ls_and_in_the_tui(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(home)
    seed = fmt.RunColumn("seed", "seed", lambda r, now: r.config.get("random_seed"))
    monkeypatch.setattr(fmt, "RUN_COLUMNS", (*fmt.RUN_COLUMNS, seed))
    header = runs_table(rows, width=200, now=NOW).plain.split("\n")[0]
    assert header.split()[-1] == "seed"
    narrow = fmt.tui_columns(80, rows, now=NOW)
    assert narrow[-1].key == "seed"
    seeds = {str(row_cells(r, False, NOW, narrow)[-1]) for r in rows}
    assert seeds == {str(r.config["random_seed"]) for r in rows}
    wide_only = dataclasses.replace(seed, tui_from=fmt.WIDE)
    monkeypatch.setattr(fmt, "RUN_COLUMNS", (*fmt.RUN_COLUMNS[:-1], wide_only))
    assert "seed" not in [c.key for c in fmt.tui_columns(80, rows, now=NOW)]
    assert "seed" in [c.key for c in fmt.tui_columns(120, rows, now=NOW)]
    # a sparse column shows only where some run has a value (both front ends)
    sparse = dataclasses.replace(seed, sparse=True, value=lambda r, now: None)
    monkeypatch.setattr(fmt, "RUN_COLUMNS", (*fmt.RUN_COLUMNS[:-1], sparse))
    assert "seed" not in [c.key for c in fmt.tui_columns(200, rows, now=NOW)]
    assert "seed" not in runs_table(rows, width=200, now=NOW).plain.split("\n")[0]

"""`rhea tui` on the command line: help, and a clear message for a home it cannot use."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rhea_tui.cli import app

runner = CliRunner()


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["tui", "--help"])
    assert result.exit_code == 0
    assert "Example: rhea tui --home" in result.output


def test_unusable_homes_end_with_a_message_and_status_2(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("not a home")
    cases = {
        str(file): "not a directory",
        str(tmp_path / "missing"): "does not exist",
    }
    for home, message in cases.items():
        result = runner.invoke(app, ["tui", "--home", home])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.replace("│", " ").split())
        assert "Traceback" not in result.output


def test_a_folder_without_runs_opens_and_stays_untouched(tmp_path: Path) -> None:
    """`rhea tui` in a new folder opens (first steps) instead of refusing; nothing is written."""
    from rhea_tui.commands.tui import check_home

    check_home(tmp_path)  # raised "is not a Rhea home yet" before
    assert list(tmp_path.iterdir()) == []

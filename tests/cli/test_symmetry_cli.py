"""The architecture and symmetry keys in `rhea run --help`, sweeps and the TUI's new-run form."""

from __future__ import annotations


def test_keys_reach_the_cli_the_sweeps_and_the_form() -> None:
    from typer.testing import CliRunner

    from rhea_engine import sweep
    from rhea_engine.config import resolve
    from rhea_tui.cli import app
    from rhea_tui.form import FieldError, form_defaults, read_form, resolve_run

    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "--architecture" in help_text and "--symmetry" in help_text
    config = resolve(shortcuts={"architecture": "equivariant", "symmetry": "box3d"})
    assert (config.architecture, config.symmetry) == ("equivariant", "box3d")
    axes, fixed = sweep.parse_values({}, ["architecture=transfer,equivariant", "symmetry=box3d"])
    grid = [{**fixed, **point} for point in sweep.expand_grid(axes)]
    assert [(p["architecture"], p["symmetry"]) for p in grid] == [
        ("transfer", "box3d"),
        ("equivariant", "box3d"),
    ]
    form = form_defaults()
    assert (form["architecture"], form["symmetry"]) == ("transfer", "none")
    resolved = resolve_run(read_form({**form, "symmetry": "full"}))
    assert resolved["symmetry"] == "full" and not resolved["average_heavies_in_final_state"]
    try:
        resolve_run(read_form({**form, "architecture": "graph"}))
    except FieldError as error:
        assert error.field == "architecture" and "graph" in error.message
    else:
        raise AssertionError("an unknown architecture was accepted")

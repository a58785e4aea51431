"""The engine never loads the front ends' packages, and `rhea --help` never loads torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import rhea_engine

FRONT_END_PACKAGES = ("textual", "typer", "rich", "rhea_tui")
# optional extras, loaded inside the functions that need them (rhea[plot])
LAZY_PACKAGES = ("matplotlib",)


def _engine_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(rhea_engine.__path__, prefix="rhea_engine."):
        names.append(info.name)
    return sorted(names)


def test_engine_has_modules() -> None:
    assert "rhea_engine.config" in _engine_modules()


@pytest.mark.parametrize("module", _engine_modules())
def test_engine_module_does_not_import_front_ends(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"bad = [m for m in {FRONT_END_PACKAGES + LAZY_PACKAGES!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} loaded {out.stdout.strip()}"


def test_cli_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rhea_tui.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print('torch' in sys.modules, 'textual' in sys.modules, 'matplotlib' in sys.modules,"
        " 'optuna' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False False False"


def _commands(group, prefix=()):  # type: ignore[no-untyped-def]
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path, command
        if getattr(command, "commands", None):  # a group (typer's own click types)
            yield from _commands(command, path)


def test_every_command_has_help_with_an_example() -> None:
    """Every command and group, the CLI's one help check: `--help` ends with an example."""
    import typer
    from typer.testing import CliRunner

    from rhea_tui.cli import app

    root = typer.main.get_command(app)
    commands = list(_commands(root))
    names = {" ".join(path) for path, _ in commands}
    assert {"run", "ls", "show", "stop", "resume", "rm", "db rebuild", "data synth"} <= names
    runner = CliRunner()
    for path, _command in [((), root), *commands]:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        text = " ".join(result.output.replace("│", " ").split())
        assert f"Example: rhea {' '.join(path)}".rstrip() in text, (path, result.output)

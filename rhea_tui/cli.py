"""The `rhea` command line: a Typer app whose commands live in rhea_tui/commands/.

Each command parses its flags, calls one engine function and turns a RheaError into a
one-paragraph message on stderr with exit status 2. Heavy imports (torch) happen inside
commands so that `rhea --help` is instant.
"""

from __future__ import annotations

import sys

import typer

from rhea_tui.commands import data, export, plot, runs, sweep, tags, tui
from rhea_tui.common import print_error

app = typer.Typer(
    name="rhea",
    help="Train and manage neural-network surrogates for the neutrino fast flavor instability.\n\n"
    "Example: rhea run --lr 1e-4 --epochs 20",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for module in (data, runs, tags, sweep, export, plot, tui):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    from rhea_engine.errors import RheaError

    try:
        app()
    except RheaError as exc:  # raised outside a command body (e.g. in a callback)
        print_error(exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()

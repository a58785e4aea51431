"""CLI command: `rhea tui`, the terminal monitor of a Rhea home."""

from __future__ import annotations

import typer

from rhea_tui.common import HomeOpt, handle_errors, resolve_home


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("tui")
    @handle_errors
    def tui(home: HomeOpt = None) -> None:
        """Watch, compare and launch runs in the terminal (keyboard only, works over SSH).

        Keys: Enter opens a run, Space marks, c compares, n starts a run, ? shows all keys.

        Example: rhea tui --home ~/ffi-runs
        """
        from rhea_tui.app import RheaApp

        RheaApp(resolve_home(home)).run()

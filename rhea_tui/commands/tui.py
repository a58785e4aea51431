"""CLI command: `rhea tui`, the terminal monitor of a Rhea home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rhea_tui.common import HomeOpt, handle_errors, resolve_home


def check_home(root: Path) -> None:
    """Stop before the screen opens if `root` cannot be a Rhea home. A folder without runs
    opens (with first steps); nothing is written to it until a run is started there."""
    from rhea_engine.errors import StoreError
    from rhea_engine.runs.store import Store
    from rhea_tui.state import is_home

    if root.exists() and not root.is_dir():
        raise StoreError(f"The Rhea home {root} is a file, not a directory; give --home DIR.")
    if not root.is_dir():
        raise StoreError(
            f"The Rhea home {root} does not exist; create the folder, give --home or set RHEA_HOME."
        )
    if is_home(root):
        Store(root).close()  # a damaged runs.db stops here with its message


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("tui")
    @handle_errors
    def tui(
        home: HomeOpt = None,
        bell: Annotated[
            bool, typer.Option("--bell", help="Ring the terminal bell when a run ends (b toggles).")
        ] = False,
    ) -> None:
        """Watch, compare and launch runs in the terminal (keyboard only, works over SSH).

        Keys: Enter opens a run, Space marks, c compares, n starts a run, ? shows all keys.
        A run that finishes, fails, diverges, is lost or pruned is announced as it happens.

        Example: rhea tui --home ~/ffi-runs --bell
        """
        from rhea_tui.app import RheaApp

        root = resolve_home(home)
        check_home(root)
        RheaApp(root, bell=bell).run()

"""CLI command: `rhea tui`, the terminal monitor of a Rhea home."""

from __future__ import annotations

from pathlib import Path

import typer

from rhea_tui.common import HomeOpt, handle_errors, resolve_home


def check_home(root: Path) -> None:
    """Stop before the screen opens if `root` is not a usable Rhea home."""
    from rhea_engine.errors import StoreError
    from rhea_engine.runs.store import Store

    if root.exists() and not root.is_dir():
        raise StoreError(f"The Rhea home {root} is a file, not a directory; give --home DIR.")
    if not root.is_dir():
        raise StoreError(f"The Rhea home {root} does not exist; give --home or set RHEA_HOME.")
    if not (root / "runs.db").exists() and not (root / "runs").is_dir():
        raise StoreError(
            f"{root} is not a Rhea home yet (no runs.db or runs/); start a run there with "
            "`rhea run`, or give --home or set RHEA_HOME."
        )
    Store(root).close()  # a damaged runs.db stops here with its message


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

        root = resolve_home(home)
        check_home(root)
        RheaApp(root).run()

"""CLI command: tag (add, remove or list the tags of runs; `--where "tag = NAME"` finds them)."""

from __future__ import annotations

from typing import Annotated

import typer

from rhea_tui.common import HomeOpt, console, handle_errors


def tag(
    handle: Annotated[
        str, typer.Argument(metavar="RUN", help="Run handle, or sweep:NAME for all its runs.")
    ],
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[NAME...]", help="Tags to add (or remove).")
    ] = None,
    remove: Annotated[
        bool, typer.Option("--remove", "-r", help="Take the named tags off instead.")
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Tag runs, so that filters find them (`rhea ls --where "tag = baseline"`); without
    names, print the run's tags. Tags are kept in runs.db and in the run directory.

    Example: rhea tag run3 baseline paper-fig2   (and: rhea tag run3 --remove paper-fig2)
    """
    from rhea_engine.errors import RunError
    from rhea_tui.commands.runs import _store

    if remove and not names:
        raise RunError("Name the tags to remove: rhea tag RUN --remove NAME...")
    store = _store(home)
    for row in store.resolve_handles([handle]):
        if remove:
            tags = store.tag(row.name, remove=names or [])
        else:
            tags = store.tag(row.name, add=names or [])
        console.print(f"{row.name}: {', '.join(tags) if tags else '(no tags)'}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the tag command to the root app."""
    from rhea_tui.commands.runs import _closing

    app.command("tag")(handle_errors(_closing(tag)))

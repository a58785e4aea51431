"""Helpers shared by the CLI commands: home resolution, error printing, the error wrapper."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from rhea_engine.errors import RheaError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False)
console = Console(highlight=False)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Rhea home (runs.db and runs/). Default: $RHEA_HOME, else the current directory.",
        show_default=False,
    ),
]

WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where",
        help="Only runs that match a filter: key op value (= != < <= > >= ~ glob), joined "
        "by and/or/not and parentheses; keys are summary columns (status, sweep, name, "
        "best_test_loss, ...), tag and config keys. Example: "
        '"status = completed and learning_rate < 1e-4".',
        show_default=False,
    ),
]


def resolve_home(home: Path | None = None) -> Path:
    """--home, else $RHEA_HOME, else the current directory."""
    if home is None:
        env = os.environ.get("RHEA_HOME")
        home = Path(env) if env else Path.cwd()
    return home.expanduser().resolve()


def print_error(exc: RheaError) -> None:
    # Text, not markup: a message naming `rhea[plot]` or a path with brackets stays whole
    body = Text(exc.message)
    err_console.print(Panel(body, title=exc.title, title_align="left", border_style="red"))


def handle_errors(fn: F) -> F:
    """Turn a RheaError raised by a command into a message on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RheaError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def die(message: str, title: str = "Error") -> None:
    """Stop a command with a user-facing message (exit status 2)."""
    print_error(RheaError(message, title))
    sys.stderr.flush()
    raise typer.Exit(2)

"""CLI command: import (upstream run folders as completed runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rhea_tui.common import HomeOpt, console, resolve_home


def import_(
    directory: Annotated[Path, typer.Argument(help="An upstream run folder, or a folder of them.")],
    name: Annotated[
        str | None, typer.Option(help="Run name (one folder) or sweep name (several).")
    ] = None,
    link: Annotated[
        bool, typer.Option(help="Reference the upstream checkpoints instead of copying them.")
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Import upstream run folders (parameters.txt, loss.dat, model*_*.pt) as completed runs.

    A folder of run folders becomes a sweep named after it.

    Example: rhea import ~/old-runs/lr_scan
    """
    from rhea_engine.importer import import_runs
    from rhea_engine.runs.store import Store

    with Store(resolve_home(home)) as store:
        names = import_runs(store, directory, name=name, copy_checkpoints=not link)
        rows = [store.get_run(n) for n in names]
    sweep = rows[0].sweep if rows else None
    console.print(
        f"Imported {len(rows)} run(s) from {directory}"
        + (f" as sweep {sweep} (compare with `rhea compare sweep:{sweep}`)" if sweep else "")
        + ": "
        + ", ".join(f"{r.name} ({r.last_epoch or 0} epochs)" for r in rows)
    )

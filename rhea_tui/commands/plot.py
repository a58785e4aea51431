"""CLI command: `rhea plot`, figure files (PDF, PNG, SVG) of runs, sweeps and evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rhea_tui.common import HomeOpt, WhereOpt, console, handle_errors, resolve_home


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("plot")
    @handle_errors
    def plot(
        output: Annotated[
            Path,
            typer.Option("--output", "-o", help="The figure file: .pdf, .png or .svg."),
        ],
        handles: Annotated[
            list[str] | None,
            typer.Argument(
                help="Runs, or sweep:NAME (with --where: optional).", show_default=False
            ),
        ] = None,
        metric: Annotated[
            list[str] | None,
            typer.Option(
                "--metric",
                "-m",
                help="A metric to plot (repeatable). Default: total and per-task test "
                "losses, ELN violation, learning rate.",
                show_default=False,
            ),
        ] = None,
        kind: Annotated[
            str,
            typer.Option(
                help="curves (metrics, runs overlaid) | grid (one panel per run) | final "
                "(last/best value vs a parameter) | pareto (objectives' trade-off) | "
                "evaluation (model vs Box3D vs identity of one run)."
            ),
        ] = "curves",
        log: Annotated[bool, typer.Option("--log/--linear", help="Log or linear y axis.")] = True,
        x: Annotated[str, typer.Option("--x", help="epoch | time (training time).")] = "epoch",
        smooth: Annotated[
            int, typer.Option(help="Trailing mean over N epochs (raw curves stay faint).")
        ] = 1,
        style: Annotated[
            str,
            typer.Option(
                help="default | paper (single-column width, serif, colour-blind-safe, "
                "vector output: .pdf or .svg)."
            ),
        ] = "default",
        color_by: Annotated[
            str | None,
            typer.Option(
                "--color-by",
                help="Colour runs by this parameter (a sweep's first differing one by default).",
                show_default=False,
            ),
        ] = None,
        versus: Annotated[
            str | None,
            typer.Option(
                "--vs", help="--kind final: the parameter on the x axis.", show_default=False
            ),
        ] = None,
        objective: Annotated[
            list[str] | None,
            typer.Option(
                "--objective",
                help="--kind pareto: a metric or evaluation number, repeatable; max:NAME "
                "to maximise. Default: the sweep's objectives.",
                show_default=False,
            ),
        ] = None,
        at: Annotated[
            str, typer.Option(help="--kind final/pareto: a metric's last or best value.")
        ] = "last",
        where: WhereOpt = None,
        home: HomeOpt = None,
    ) -> None:
        """Write a figure of runs or a sweep to a PDF, PNG or SVG file (needs rhea\\[plot]).

        With --where, the runs given (or all runs, when none is given) that match the filter.

        Example: rhea plot sweep:lr -o lr.pdf --style paper --where "status = completed"
        """
        from rhea_engine.errors import PlotError
        from rhea_engine.figures.data import PlotOptions
        from rhea_engine.figures.plot import plot as draw
        from rhea_engine.runs.store import Store

        options = PlotOptions(
            kind=kind,
            metrics=tuple(metric or ()),
            log=log,
            x=x,
            smooth=smooth,
            style=style,
            color_by=color_by,
            versus=versus,
            objectives=tuple(objective or ()),
            at=at,
            where=where,
        )
        if not handles and where is None:
            raise PlotError("Name the runs to plot (run3 run4, or sweep:NAME), or give --where.")
        with Store.open_existing(resolve_home(home)) as store:
            result = draw(store, handles or [], output, options)
        runs = ", ".join(result.runs[:6]) + (" ..." if len(result.runs) > 6 else "")
        console.print(f"wrote {result.output} ({result.kind}, {result.axes} axes: {runs})")

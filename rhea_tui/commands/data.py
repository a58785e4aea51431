"""CLI commands: `rhea data synth` and `rhea data inspect`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rhea_tui.common import console, handle_errors

data_app = typer.Typer(
    name="data",
    help="Generate and inspect FFI data sets (HDF5).\n\nExample: rhea data synth data/ --n 20000 --seed 1",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@data_app.command("synth")
@handle_errors
def synth(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Directory to write asymptotic.h5 and stable.h5 into.", show_default=False
        ),
    ],
    n: Annotated[
        int,
        typer.Option(
            "--n",
            help="Number of samples (all go to stable.h5; the unstable ones also to asymptotic.h5).",
            min=1,
        ),
    ] = 100_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same files.", min=0)
    ] = 0,
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            help="Scatter of the final states, as a fraction of N_e, in directions that keep "
            "every conserved quantity (mimics simulation output; 0 = exact Box3D).",
            min=0.0,
        ),
    ] = 0.0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Threads generating chunks side by side (default: every core this process may "
            "use); the files are identical for any value.",
            min=1,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a synthetic data set: crossing-test labels and Box3D final states and growth rates.

    Example: rhea data synth ~/rhea-data --n 200000 --seed 7
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from rhea_engine.data.synth import synth_to_dir

    with Progress(
        TextColumn("Generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("synth", total=n)
        result = synth_to_dir(
            directory,
            n,
            seed,
            progress=lambda done, total: bar.update(task, completed=done),
            noise=noise,
            workers=workers,
        )
    console.print(
        f"Wrote {result.asymptotic_path} ({result.n_unstable} unstable rows) and "
        f"{result.stable_path} ({result.n} labelled rows), seed {result.seed}."
    )
    console.print(
        f"Unstable {result.n_unstable / result.n:.1%}, stable {1 - result.n_unstable / result.n:.1%}."
    )
    for name, fraction in result.fractions.items():
        console.print(f"  {name:<15} {result.counts[name]:>9} samples  {fraction:6.1%} unstable")


def _range(values: Any) -> list[float] | None:
    return [float(values.min()), float(values.max())] if values.size else None


def summarize(path: Path) -> dict[str, Any]:
    """The figures `rhea data inspect` prints, as a dict."""
    import numpy as np

    from rhea_engine.data import detect_kind, load_asymptotic, load_stable
    from rhea_engine.physics import flux_factor

    kind = detect_kind(path)
    info: dict[str, Any] = {"path": str(path), "kind": kind}
    if kind == "asymptotic":
        aset = load_asymptotic(path)
        info.update(
            rows=len(aset),
            nf=aset.nf,
            nonfinite_rows_dropped=aset.n_dropped_nonfinite,
            negative_density_rows_zeroed=aset.n_zeroed_negative,
            max_conservation_error=aset.max_conservation_error,
            flux_factor_initial=_range(flux_factor(aset.F4_initial)),
            flux_factor_final=_range(flux_factor(aset.F4_final)),
            fraction_unstable=1.0,
            fraction_stable=0.0,
            growth_rate_range=_range(aset.growth_rate),
        )
    else:
        sset = load_stable(path)
        stable = float(np.mean(sset.stable)) if len(sset) else 0.0
        info.update(
            rows=len(sset),
            nf=sset.nf,
            nonfinite_rows_dropped=sset.n_dropped_nonfinite,
            negative_density_rows_zeroed=sset.n_zeroed_negative,
            max_conservation_error=None,
            flux_factor_initial=_range(flux_factor(sset.F4_initial)),
            fraction_unstable=1.0 - stable,
            fraction_stable=stable,
            growth_rate_range=None,
        )
    return info


@data_app.command("inspect")
@handle_errors
def inspect(
    file: Annotated[
        Path, typer.Argument(help="An asymptotic or stable HDF5 file.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Check a data file and print its kind, rows, conservation error, flux factors and labels.

    Example: rhea data inspect ~/rhea-data/asymptotic.h5
    """
    info = summarize(file)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    fmt = lambda r: "n/a" if r is None else f"{r[0]:.4g} .. {r[1]:.4g}"  # noqa: E731
    console.print(f"[bold]{info['path']}[/bold]")
    console.print(f"  kind                    {info['kind']} (nf = {info['nf']})")
    console.print(f"  rows                    {info['rows']}")
    console.print(f"  non-finite rows dropped {info['nonfinite_rows_dropped']}")
    if info["negative_density_rows_zeroed"]:
        console.print(
            f"  rows with small negative densities zeroed {info['negative_density_rows_zeroed']}"
        )
    conservation = info["max_conservation_error"]
    console.print(
        "  max conservation error  "
        + ("n/a (stable file)" if conservation is None else f"{conservation:.3g} of ntot")
    )
    console.print(f"  flux factor (initial)   {fmt(info['flux_factor_initial'])}")
    if "flux_factor_final" in info:
        console.print(f"  flux factor (final)     {fmt(info['flux_factor_final'])}")
    console.print(
        f"  labels                  {info['fraction_unstable']:.1%} unstable, {info['fraction_stable']:.1%} stable"
    )
    console.print(f"  growth rate (1/s)       {fmt(info['growth_rate_range'])}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(data_app, name="data")

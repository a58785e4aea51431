"""CLI commands: `rhea data synth` and `rhea data inspect`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rhea_tui.common import HomeOpt, console, err_console, handle_errors, resolve_home

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
    min_flux_factor: Annotated[
        float,
        typer.Option(
            "--min-flux-factor",
            help="Raise every non-zero flux factor below this to it (direction kept), before "
            "labelling. The default 0 keeps the physical states; use e.g. 1e-6 for codes that "
            "compute in float32, which lose fluxes below ~1e-19 of ntot.",
            min=0.0,
        ),
    ] = 0.0,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace asymptotic.h5 and stable.h5 if they exist."),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Write a synthetic data set: crossing-test labels and Box3D final states and growth rates.

    Existing files are never replaced without --force; runs of the Rhea home that recorded
    them are named either way.

    Example: rhea data synth ~/rhea-data --n 200000 --seed 7
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from rhea_engine.data.synth import synth_paths, synth_to_dir

    existing = [p for p in synth_paths(directory).values() if p.exists()]
    users = _runs_using(resolve_home(home), existing) if existing else {}
    if existing and not force:
        from rhea_engine.errors import DataError

        used = _used_note(users)
        raise DataError(
            f"Not overwriting {' and '.join(str(p) for p in existing)}"
            + (f": {used}" if used else "")
            + ". Choose another directory, or pass --force to replace them."
        )
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
            min_flux_factor=min_flux_factor,
            force=force,
        )
    if users:
        err_console.print(
            f"Replaced files that runs of this home used: {_used_note(users)}. Their recorded "
            "sha256 no longer matches the files."
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


def _runs_using(home: Path, files: list[Path]) -> dict[str, list[str]]:
    """{file: names of the runs of `home` that recorded it as data}; {} without a runs.db."""
    from rhea_engine.errors import RheaError
    from rhea_engine.runs.refresh import refresh
    from rhea_engine.runs.store import Store

    if not (home / "runs.db").is_file():
        return {}
    wanted = {str(f.resolve()): str(f) for f in files}
    found: dict[str, list[str]] = {}
    try:
        with Store.open_existing(home) as store:
            refresh(store)  # runs.db current with the run directories before reading it
            for row in store.list_runs():
                for item in row.data or []:
                    path = item.get("path") if isinstance(item, dict) else None
                    key = str(Path(str(path)).expanduser().resolve()) if path else ""
                    if key in wanted:
                        found.setdefault(wanted[key], []).append(row.name)
    except RheaError:
        return {}
    return found


def _used_note(users: dict[str, list[str]]) -> str:
    return "; ".join(f"{path} was used by {', '.join(names)}" for path, names in users.items())


def _range(values: Any) -> list[float] | None:
    return [float(values.min()), float(values.max())] if values.size else None


def summarize(path: Path) -> dict[str, Any]:
    """The figures `rhea data inspect` prints, as a dict."""
    import numpy as np

    from rhea_engine.data import detect_kind, load_asymptotic, load_stable
    from rhea_engine.data.schema import FLOAT32_FLUX_FLOOR, rows_with_unresolved_flux
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
            rows_flux_below_float32=rows_with_unresolved_flux(aset.F4_initial),
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
            rows_flux_below_float32=rows_with_unresolved_flux(sset.F4_initial),
        )
    info["float32_flux_floor_of_ntot"] = FLOAT32_FLUX_FLOOR
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
    console.print(
        f"  flux below float32      {info['rows_flux_below_float32']} rows with a species "
        f"flux 0 < |F| < {info['float32_flux_floor_of_ntot']:.3g} ntot (lost by float32 code; "
        "`rhea data synth --min-flux-factor` avoids them)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(data_app, name="data")

"""CLI commands: export (TorchScript or AOTInductor, with a parity check) and predict."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rhea_tui.common import HomeOpt, console, die, err_console, handle_errors, resolve_home


class ExportFormat(StrEnum):
    torchscript = "torchscript"
    aoti = "aoti"


class Layout(StrEnum):
    not_main = "not-main"
    main = "main"


@handle_errors
def export(
    run: Annotated[
        str, typer.Argument(help="Run handle (run1, a --name, ...).", show_default=False)
    ],
    best: Annotated[
        bool, typer.Option("--best", help="Export the checkpoint with the lowest test loss.")
    ] = False,
    epoch: Annotated[
        int | None,
        typer.Option("--epoch", help="Export the checkpoint of epoch N.", show_default=False),
    ] = None,
    cpu: Annotated[
        bool,
        typer.Option("--cpu", help="Export for the CPU: the file loads on machines without CUDA."),
    ] = False,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="torchscript (all upstream "
            "methods, portable) or aoti (predict_all compiled "
            "ahead of time for this machine).",
        ),
    ] = ExportFormat.torchscript,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Output file. Default: <run dir>/exports/<run>_epochNNNNN_<device>.pt[2].",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[
        Layout | None,
        typer.Option(
            "--layout",
            help="Layout of predict_all: not-main (default; F4 [N,4,2,NF], growth rate in 1/s) "
            "or main (upstream main's consumers: F4 [N,2,NF,4], growth rate in cm^-3). An "
            "imported upstream model keeps its own layout.",
            show_default=False,
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Export a run's model for simulation codes, check it against the trained model, and
    write a JSON model card beside it. Without --best or --epoch the latest checkpoint is used.
    A run imported from upstream exports its TorchScript model file, re-saved with a card.

    Example: rhea export run3 --best --cpu -o nsm_model.pt
    """
    from rhea_engine.export import export_run

    with err_console.status("Exporting") as status:
        result = export_run(
            resolve_home(home),
            run,
            best=best,
            epoch=epoch,
            cpu=cpu,
            fmt=fmt.value,
            output=output,
            progress=lambda msg: status.update(msg),
            layout=layout.value if layout is not None else None,
        )
    from rhea_tui.format import parity_text

    console.print(
        f"Exported epoch {result.epoch} of run '{run}' as {result.format} "
        f"({result.device}, {result.layout} layout) in {result.seconds:.1f} s:"
    )
    console.print(f"  model  {result.path}")
    console.print(f"  card   {result.card_path}")
    console.print(f"  {parity_text(result.parity)}")


def _nsm1_report(prediction: Any) -> None:
    from rich.table import Table

    from rhea_engine.predict import SPECIES

    console.print("NSM1 cell (Richers et al. 2024): model vs Box3D vs full simulation (Emu)")
    console.print(
        f"  stability (probability stable): {prediction.stability:.4f}   [Box3D and Emu: unstable]"
    )
    box = f"{prediction.box3d_growthrate:.4e}" if prediction.box3d_growthrate is not None else "n/a"
    console.print(f"  growth rate: {prediction.growthrate:.4e} 1/s   [Box3D: {box} 1/s]")
    table = Table(
        "species",
        "N initial",
        "N model",
        "N Box3D",
        "N Emu",
        box=None,
        title="final number densities (cm^-3)",
        title_justify="left",
    )
    for s in range(2):
        for a in range(3):
            box_N = f"{prediction.box3d_N[s, a]:.4e}" if prediction.box3d_N is not None else "n/a"
            table.add_row(
                SPECIES[s][a],
                f"{prediction.F4_initial[0, 3, s, a]:.4e}",
                f"{prediction.F4_final[0, 3, s, a]:.4e}",
                box_N,
                f"{prediction.emu_N[s, a]:.4e}",
            )
    console.print(table)


@handle_errors
def predict(
    model: Annotated[
        Path, typer.Argument(help="An exported model (.pt or .pt2).", show_default=False)
    ],
    nsm1: Annotated[
        bool,
        typer.Option(
            "--nsm1",
            help="Predict the NSM1 test cell and show it beside Box3D and the full simulation.",
        ),
    ] = False,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input", "-i", help="HDF5 file with F4_initial(1|ccm) [N,4,2,NF].", show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Output HDF5 file. Default: <input>_predicted.h5.",
            show_default=False,
        ),
    ] = None,
    trust_native_code: Annotated[
        bool,
        typer.Option(
            "--trust-native-code",
            help="Open an AOTInductor package (.pt2) that this home did not export. Opening "
            "one runs the native code inside it: only for files from a source you trust.",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Predict with an exported model (or an upstream TorchScript model file): the NSM1 test
    cell, or every cell of an HDF5 file. Inputs and outputs are in Rhea's layout
    [N, 4, 2, NF] with growth rates in 1/s, whatever the model's own layout.

    Example: rhea predict model.pt --input cells.h5 -o predicted.h5
    """
    if nsm1 == (input_file is not None):
        die("Give exactly one of --nsm1 or --input FILE.h5.", title="Usage error")
    if nsm1 and output is not None:
        die(
            "-o names the file predictions of --input FILE.h5 go to; --nsm1 prints its "
            "result and writes nothing.",
            title="Usage error",
        )
    from rhea_engine.predict import load_exported, predict_file, predict_nsm1

    exported = load_exported(model, home=resolve_home(home), trust_native_code=trust_native_code)
    err_console.print(exported.describe())
    if nsm1:
        _nsm1_report(predict_nsm1(exported))
        return
    assert input_file is not None
    target = output or input_file.with_name(input_file.stem + "_predicted.h5")
    with err_console.status("Predicting") as status:
        path, rows, skipped = predict_file(
            exported,
            input_file,
            target,
            progress=lambda done, total: status.update(f"Predicting {done}/{total} cells"),
        )
    note = f" ({skipped} rows with non-finite values got NaN)" if skipped else ""
    console.print(f"Wrote predictions for {rows} cells to {path}{note}.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("export")(export)
    app.command("predict")(predict)

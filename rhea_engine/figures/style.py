"""Figure styles (default and paper), the colour-blind-safe palette, and loading matplotlib.

matplotlib is an optional extra (`pip install 'rhea[plot]'`): it is imported here, inside
functions, so that nothing else in Rhea pays for it or needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rhea_engine.errors import PlotError

STYLES = ("default", "paper")
FORMATS = ("pdf", "png", "svg")
VECTOR_FORMATS = ("pdf", "svg")

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
# vision deficiency and in greyscale by lightness; yellow last (faint on white).
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
COLORMAP = "viridis"  # numeric parameters: perceptually uniform and colour-blind safe
PREDICTOR_COLORS = {"model": PALETTE[0], "box3d": PALETTE[1], "identity": "#777777"}

# Single-column width of the common physics journals (APS, AAS, MNRAS): 3.4 in (8.6 cm).
PAPER_WIDTH_IN = 3.4
DEFAULT_WIDTH_IN = 7.5

_COMMON = {
    "axes.prop_cycle": None,  # filled in by `rc`
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType: text stays text, as journals ask
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # text stays editable text in SVG
    "svg.hashsalt": "rhea",  # the same figure gives the same file
    "image.cmap": COLORMAP,
}
_RC = {
    "default": {
        "font.family": "sans-serif",
        "font.size": 9,
        "axes.titlesize": 9,
        "legend.fontsize": 8,
        "lines.linewidth": 1.4,
        "savefig.dpi": 150,
    },
    "paper": {
        "font.family": "serif",
        "font.serif": ["STIXGeneral", "DejaVu Serif"],  # both ship with matplotlib
        "mathtext.fontset": "stix",
        "font.size": 8,
        "axes.titlesize": 8,
        "axes.labelsize": 8,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 6.5,
        "lines.linewidth": 1.0,
        "axes.linewidth": 0.6,
        "savefig.dpi": 600,
    },
}


def require_matplotlib() -> Any:
    """Import matplotlib, or stop with how to install it (PlotError, exit status 2)."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401 - the part every figure needs
    except ImportError as exc:
        raise PlotError(
            "`rhea plot` draws with matplotlib, which is not installed in this Python "
            f"environment ({exc}). Install the plotting extra with `pip install 'rhea[plot]'` "
            "(or `pip install matplotlib`) and run the command again.",
            title="matplotlib missing",
        ) from None
    return matplotlib


def output_format(path: Path, style: str) -> str:
    """The file format from the extension; paper figures must be vector graphics."""
    if style not in STYLES:
        raise PlotError(f"Unknown --style '{style}'; use one of {', '.join(STYLES)}.")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(
            f"Cannot tell the figure format from '{path.name}': name the output file "
            f"-o FILE.pdf, FILE.png or FILE.svg."
        )
    if style == "paper" and fmt not in VECTOR_FORMATS:
        raise PlotError(
            "--style paper makes vector figures for a journal: write FILE.pdf or FILE.svg "
            f"(not .{fmt}), or drop --style paper for a PNG."
        )
    if not path.parent.is_dir():
        raise PlotError(f"The folder {path.parent} of the output file does not exist.")
    return fmt


def rc(style: str) -> dict[str, Any]:
    from cycler import cycler

    return {**_COMMON, **_RC[style], "axes.prop_cycle": cycler(color=list(PALETTE))}


def figure_width(style: str) -> float:
    return PAPER_WIDTH_IN if style == "paper" else DEFAULT_WIDTH_IN


@contextmanager
def styled(style: str) -> Iterator[None]:
    """Draw and save inside this: rcParams apply when artists are made and when files are."""
    matplotlib = require_matplotlib()
    with matplotlib.rc_context(rc(style)):
        yield


def new_figure(style: str, nrows: int, ncols: int, panel_height: float | None = None) -> Any:
    """A constrained-layout Figure (no pyplot: no global state, no GUI backend)."""
    from matplotlib.figure import Figure

    width = figure_width(style)
    height = panel_height or (1.45 if style == "paper" else 2.4)
    return Figure(figsize=(width, 0.35 + height * nrows), layout="constrained")


def save(figure: Any, path: Path, fmt: str) -> None:
    """Write the figure atomically: a reader (or a crash) never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    metadata = {"Creator": "rhea plot"} if fmt != "png" else {"Software": "rhea plot"}
    if fmt == "pdf":
        metadata["CreationDate"] = None  # type: ignore[assignment]  # reproducible files
    if fmt == "svg":
        metadata["Date"] = None  # type: ignore[assignment]
    try:
        figure.savefig(partial, format=fmt, metadata=metadata)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def gid(*parts: str) -> str:
    """An SVG id for an artist (`rhea-line--run--metric`); tests and users can find it."""
    clean = ["".join(c if c.isalnum() or c in "_.-" else "_" for c in p) for p in parts]
    return "--".join(["rhea", *clean])

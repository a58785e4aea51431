"""The final evaluation of one run: the model beside Box3D and the identity (no mixing).

Drawn from evaluation.json, the per-sample summary the worker keeps at the end of training
(`rhea_engine.evaluate.distributions`), and the run's evaluation numbers from the store.
"""

from __future__ import annotations

import json
from typing import Any

from rhea_engine.compare import SOURCES
from rhea_engine.errors import PlotError
from rhea_engine.figures.data import RunData
from rhea_engine.figures.style import PREDICTOR_COLORS, gid, new_figure
from rhea_engine.runs.rundir import EVALUATION_FILE, EVALUATION_FORMAT

PREDICTOR_LABELS = dict(SOURCES)  # model, Box3D, identity
PREDICTORS = tuple(PREDICTOR_LABELS)


def read_distributions(run: RunData) -> dict[str, Any]:
    """evaluation.json of a run, or a PlotError that says why there is none."""
    file = run.path / EVALUATION_FILE if run.path is not None else None
    if file is None or not file.is_file():
        raise PlotError(
            f"Run '{run.name}' has no {EVALUATION_FILE}: Rhea keeps it when a run completes "
            "its final evaluation (runs trained before this version of Rhea, imported runs, "
            "and runs that did not complete have none). Plot its curves instead (the default "
            "--kind curves)."
        )
    try:
        summary = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PlotError(f"{file} cannot be read ({exc}); the run directory is damaged.") from exc
    if not isinstance(summary, dict) or summary.get("format") != EVALUATION_FORMAT:
        raise PlotError(f"{file} is not an evaluation summary this version of Rhea can read.")
    return summary


def _ndens_panel(ax: Any, summary: dict[str, Any], evaluation: dict[str, float]) -> None:
    block = summary["ndens_e_error"]
    edges = block["edges"]
    for who in PREDICTORS:
        counts = block["counts"].get(who)
        if not counts or not sum(counts):
            continue
        total = float(sum(counts))
        mean = evaluation.get(f"{who}_ndens_e_mean_err")
        label = PREDICTOR_LABELS[who] + (f" (mean {mean:.2g})" if mean is not None else "")
        ax.stairs(
            [c / total for c in counts],
            edges,
            color=PREDICTOR_COLORS[who],
            label=label,
            linewidth=1.2,
            gid=gid("hist", who),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")  # a predictor exact to rounding puts all its weight in one bin
    samples = max((sum(c) for c in block["counts"].values()), default=1)
    ax.set_ylim(bottom=0.3 / max(1, samples))
    ax.set_xlabel(r"$|\Delta N_e| / n_\mathrm{tot}$ ($\nu_e$ and $\bar\nu_e$)")
    ax.set_ylabel("fraction of test samples")
    ax.set_title("final electron-flavour densities")
    ax.legend(loc="best")


def _growth_panel(ax: Any, summary: dict[str, Any], evaluation: dict[str, float]) -> None:
    block = summary["growthrate"]
    true = block["true"]
    shown: list[float] = []
    for who in ("box3d", "model"):
        predicted = block.get(who)
        if not predicted:
            continue
        pairs = [(t, p) for t, p in zip(true, predicted, strict=True) if t > 0 and p > 0]
        err = evaluation.get(f"{who}_growthrate_log_err")
        label = PREDICTOR_LABELS[who] + (
            rf" ($\langle|\Delta\ln\sigma|\rangle$={err:.2g})" if err is not None else ""
        )
        ax.scatter(
            [t for t, _ in pairs],
            [p for _, p in pairs],
            s=3,
            alpha=0.5,
            linewidths=0,
            color=PREDICTOR_COLORS[who],
            label=label,
            gid=gid("points", "growthrate", who),
        )
        shown += [v for pair in pairs for v in pair]
    if shown:
        low, high = min(shown), max(shown)
        ax.plot(
            [low, high],
            [low, high],
            color="0.2",
            linestyle=":",
            linewidth=0.8,
            gid=gid("line", "growthrate", "exact"),
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(r"true growth rate (s$^{-1}$)")
    ax.set_ylabel(r"predicted (s$^{-1}$)")
    n = block.get("n_test", len(true))
    ax.set_title(f"growth rate ({len(true)} of {n} test samples)")
    ax.legend(loc="upper left", markerscale=3)


def _confusion_panel(
    ax: Any, who: str, matrix: list[list[int]], accuracy: float | None, first: bool
) -> None:
    """Rows: the true class; columns: the predicted one; shade: the fraction of the row."""
    rows = [[c / max(1, sum(row)) for c in row] for row in matrix]
    ax.imshow(rows, vmin=0.0, vmax=1.0, cmap="Blues", gid=gid("confusion", who))
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if rows[i][j] > 0.6 else "black"
            ax.text(j, i, f"{count}", ha="center", va="center", fontsize="small", color=color)
    ax.set_xticks([0, 1], ["stable", "unstable"], fontsize="x-small")
    ax.set_yticks([0, 1], ["stable", "unstable"] if first else ["", ""], fontsize="x-small")
    ax.tick_params(length=0)
    ax.set_xlabel("predicted", fontsize="small")
    if first:
        ax.set_ylabel("true", fontsize="small")
    ax.grid(False)
    score = f" {accuracy:.1%}" if accuracy is not None else ""
    ax.set_title(PREDICTOR_LABELS[who] + score, fontsize="medium")


def evaluation_figure(run: RunData, style: str) -> Any:
    """|dN_e| histograms, predicted vs true growth rate, and stability confusion matrices."""
    summary = read_distributions(run)
    matrices = summary["stability"]["matrices"]
    who = [w for w in PREDICTORS if w in matrices]
    if style == "paper":
        mosaic = [["ndens"] * 3, ["growth"] * 3, [f"cm_{w}" for w in who] or ["ndens"] * 3]
        figure = new_figure(style, 3, 1, 1.6)
    else:
        mosaic = [
            ["ndens"] * 3 + ["growth"] * 3,
            sum(([f"cm_{w}"] * (6 // max(1, len(who))) for w in who), []) or ["ndens"] * 6,
        ]
        figure = new_figure(style, 2, 1, 2.8)
    axes = figure.subplot_mosaic(mosaic)
    _ndens_panel(axes["ndens"], summary, run.evaluation)
    _growth_panel(axes["growth"], summary, run.evaluation)
    for w in who:
        accuracy = run.evaluation.get(f"{w}_stability_accuracy")
        _confusion_panel(axes[f"cm_{w}"], w, matrices[w], accuracy, first=w == who[0])
    return figure

"""`rhea plot`: real figure files read back (SVG structure, PDF rendered by pdftoppm)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clitext import flat
from typer.testing import CliRunner

from rhea_engine.config import default_config
from rhea_engine.runs.store import Store
from rhea_engine.tracking import attach_run
from rhea_engine.vocabulary import TASKS
from rhea_tui.cli import app

pytest.importorskip("matplotlib")
runner = CliRunner()
LEARNING_RATES = (1e-2, 1e-3, 1e-4)


def _metrics(epoch: int, lr: float) -> dict[str, float]:
    scale = 1.0 + 100 * lr
    loss = scale / epoch
    metrics = {f"{t}_test_loss": loss * (i + 1) / 10 for i, t in enumerate(TASKS)}
    metrics |= {f"{t}_train_loss": loss * (i + 1) / 12 for i, t in enumerate(TASKS)}
    return metrics | {
        "train_loss": 0.9 * loss,
        "test_loss": loss,
        "ELN_violation": 1e-3 / epoch,
        "ELN_violation_test": 2e-3 / epoch,
        "learning_rate": lr,
        "epoch_seconds": 1.0,
    }


@pytest.fixture
def sweep_home(rhea_home: Path) -> Path:
    """A sweep `lr` of three completed runs, written through the tracking API."""
    with Store(rhea_home) as store:
        store.create_sweep("lr", {"learning_rate": list(LEARNING_RATES)})
        for i, lr in enumerate(LEARNING_RATES, start=1):
            config = default_config().replace(learning_rate=lr, epochs=12)
            row = store.create_run(config, name=f"lr-{i}", sweep="lr")
            with attach_run(row.path) as run:
                run.start(total_epochs=12, device="cpu", data=[])
                for epoch in range(1, 13):
                    run.log(epoch, _metrics(epoch, lr))
    return rhea_home


def _plot(*args: str) -> str:
    result = runner.invoke(app, ["plot", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _svg(path: Path) -> tuple[int, dict[str, int]]:
    """(axes count, {artist kind: count}) of a figure written by rhea plot."""
    text = path.read_text()
    axes = len(re.findall(r'<g id="axes_\d+"', text))
    kinds: dict[str, int] = {}
    for kind in re.findall(r'<g id="rhea--([a-z]+)--', text):
        kinds[kind] = kinds.get(kind, 0) + 1
    return axes, kinds


def test_one_run_gets_the_default_panels(sweep_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.svg"
    assert "4 axes" in _plot("lr-1", "-o", str(out))
    axes, kinds = _svg(out)
    # total (train, test), six tasks, ELN (train max, test), learning rate
    assert axes == 4 and kinds == {"line": 2 + 6 + 2 + 1}
    text = out.read_text()
    assert "test loss per task" in text and "ELN violation" in text and "learning rate" in text


def test_a_sweep_is_overlaid_and_coloured_by_its_parameter(
    sweep_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep.svg"
    _plot("sweep:lr", "-o", str(out))
    axes, kinds = _svg(out)
    assert axes == 1 + 6 + 1 + 1  # total, one per task, ELN, learning rate
    assert kinds == {"line": 3 * (2 + 6 + 2 + 1)}
    text = out.read_text()
    # the one parameter the sweep varies names the colours, in the order of its values
    entries = re.findall(r"learning_rate = ([0-9.e-]+)", text)
    assert entries == ["0.0001", "0.001", "0.01"]

    def stroke(run: str) -> str:
        start = text.index(f'id="rhea--line--{run}--test_loss"')
        return re.search(r"stroke: (#[0-9a-f]{6})", text[start:])[1]  # type: ignore[index]

    assert len({stroke(f"lr-{i}") for i in (1, 2, 3)}) == 3
    assert stroke("lr-1") == stroke_of_legend(text, "learning_rate = 0.01")


def stroke_of_legend(text: str, label: str) -> str:
    """The colour of the legend line just before a legend label."""
    before = text[: text.index(label)]
    return re.findall(r"stroke: (#[0-9a-f]{6})", before)[-1]


def test_chosen_metrics_smoothing_linear_and_time(sweep_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "chosen.svg"
    _plot(
        "lr-1",
        "lr-2",
        "-o",
        str(out),
        "--metric",
        "test_loss",
        "-m",
        "ndens_test_loss",
        "--smooth",
        "3",
        "--linear",
        "--x",
        "time",
    )
    axes, kinds = _svg(out)
    assert axes == 2
    text = out.read_text()
    # each curve twice: the smoothed one and the raw one behind it
    assert text.count('id="rhea--line--lr-1--test_loss"') == 1
    assert text.count('id="rhea--line--lr-1--test_loss--raw"') == 1
    assert kinds == {"line": 2 * 2 * 2}
    assert "training time (s)" in text and "lr-2" in text


def test_small_multiples_final_value_and_pareto(sweep_home: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.svg"
    _plot("sweep:lr", "--kind", "grid", "-o", str(grid))
    assert _svg(grid) == (3, {"line": 3 * 2})
    final = tmp_path / "final.svg"
    _plot("sweep:lr", "--kind", "final", "--at", "best", "-o", str(final))
    axes, kinds = _svg(final)
    assert axes == 2 and kinds == {"points": 2}  # test_loss and ELN_violation vs learning_rate
    assert "learning_rate" in final.read_text()
    pareto = tmp_path / "pareto.svg"
    _plot(
        "sweep:lr",
        "--kind",
        "pareto",
        "--objective",
        "test_loss",
        "--objective",
        "max:learning_rate",
        "-o",
        str(pareto),
    )
    axes, kinds = _svg(pareto)
    assert axes == 1 and kinds == {"points": 1, "pareto": 1}


def test_paper_style_pdf_is_single_column_vector_and_renders(
    sweep_home: Path, tmp_path: Path
) -> None:
    if not shutil.which("pdftoppm") or not shutil.which("pdfinfo"):
        pytest.skip("poppler-utils (pdftoppm, pdfinfo) is not installed")
    out = tmp_path / "paper.pdf"
    _plot("sweep:lr", "-o", str(out), "--style", "paper", "--metric", "test_loss")
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    width = float(re.search(r"Page size:\s+([\d.]+) x", info)[1])  # type: ignore[index]
    assert width == pytest.approx(3.4 * 72)
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True).stdout
    assert "STIX" in fonts and "Type 3" not in fonts  # serif, embedded as TrueType
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(out), str(tmp_path / "page")], check=True)
    pages = list(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    from matplotlib.image import imread

    pixels = imread(pages[0])
    assert pixels.shape[1] == pytest.approx(3.4 * 60, abs=2)
    assert pixels[..., :3].min() < 0.5  # something was drawn, not a blank page


def test_png_and_user_errors(sweep_home: Path, tmp_path: Path) -> None:
    png = tmp_path / "fig.png"
    _plot("lr-3", "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cases = [
        (["lr-1", "-o", str(tmp_path / "fig.jpg")], "FILE.pdf, FILE.png or FILE.svg"),
        (["lr-1", "-o", str(tmp_path / "p.png"), "--style", "paper"], "vector figures"),
        (["lr-1", "-o", str(tmp_path / "no" / "f.pdf")], "does not exist"),
        (["lr-1", "-o", str(tmp_path / "f.pdf"), "--metric", "nope"], "Metrics they have"),
        (["nobody", "-o", str(tmp_path / "f.pdf")], "There is no run 'nobody'"),
        (["lr-1", "-o", str(tmp_path / "f.pdf"), "--kind", "pie"], "Unknown --kind 'pie'"),
        (["lr-1", "-o", str(tmp_path / "f.pdf"), "--kind", "evaluation"], "no evaluation.json"),
        (["sweep:lr", "-o", str(tmp_path / "f.pdf"), "--kind", "pareto"], "--objective METRIC"),
        (["lr-1", "-o", str(tmp_path / "f.pdf"), "--kind", "final"], "--vs PARAM"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["plot", *args], env={"COLUMNS": "200"})
        assert result.exit_code == 2, (args, result.output)
        assert message in flat(result.output), (args, result.output)
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["fig.png"]


def test_missing_matplotlib_is_a_clear_exit_2(sweep_home: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if it were not installed\n"
        "from rhea_tui.cli import main\n"
        f"sys.argv = ['rhea', 'plot', 'lr-1', '-o', {str(tmp_path / 'f.pdf')!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "pip install 'rhea[plot]'" in flat(result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "f.pdf").exists()


def test_help_and_engine_imports_never_load_matplotlib() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rhea_tui.cli import app\n"
        "assert CliRunner().invoke(app, ['plot', '--help']).exit_code == 0\n"
        "import rhea_engine.figures.plot, rhea_engine.figures.curves, rhea_engine.tracking\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

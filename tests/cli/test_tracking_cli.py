"""A script logging through rhea_engine.tracking, seen by `rhea ls`, `show`, `plot`, `resume`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from clitext import flat
from typer.testing import CliRunner

from rhea_engine.runs.store import Store
from rhea_tui.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

SCRIPT = textwrap.dedent(
    """
    import sys
    from rhea_engine.tracking import start_run
    with start_run(config={"epochs": 4, "learning_rate": 1e-4}, home=sys.argv[1]) as run:
        for epoch in range(1, 5):
            run.log(epoch, {"train_loss": 1.0 / epoch, "test_loss": 1.5 / epoch,
                            "ELN_violation": 1e-6, "residual_norm": 0.1 * epoch})
            if epoch == 2:
                print("two", flush=True)
                sys.stdin.readline()
    """
)


def _ls(home: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["ls", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)}


def test_rhea_ls_follows_a_script_run(rhea_home: Path, tmp_path: Path) -> None:
    Store(rhea_home).close()  # runs.db exists before the script's run directory does
    assert _ls(rhea_home) == {}
    script = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(rhea_home)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert script.stdout is not None and script.stdin is not None
        assert script.stdout.readline().strip() == "two"
        row = _ls(rhea_home)["run1"]  # the first free handle, as `rhea run` would name it
        assert (row["status"], row["last_epoch"], row["total_epochs"]) == ("running", 2, 4)
        assert row["pid"] == script.pid
        script.stdin.write("go\n")
        script.stdin.flush()
        assert script.wait(timeout=60) == 0
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    row = _ls(rhea_home)["run1"]
    assert (row["status"], row["last_epoch"], row["best_test_loss"]) == ("completed", 4, 0.375)
    shown = runner.invoke(app, ["show", "run1", "--home", str(rhea_home)])
    assert shown.exit_code == 0 and "completed" in shown.output
    # the script's own metric is listed with its last and best value
    assert any(
        line.split()[:3] == ["residual_norm", "4.000e-01", "1.000e-01"]
        for line in [" ".join(raw.strip("│ ").split()) for raw in shown.output.splitlines()]
    )
    out = tmp_path / "own.svg"
    plotted = runner.invoke(  # a metric name of its own
        app, ["plot", "run1", "-m", "residual_norm", "-o", str(out), "--home", str(rhea_home)]
    )
    assert plotted.exit_code == 0, plotted.output
    assert 'id="rhea--line--run1--residual_norm"' in out.read_text()
    resumed = runner.invoke(app, ["resume", "run1", "--home", str(rhea_home)])
    assert resumed.exit_code == 2 and "completed all its epochs" in flat(resumed.output)

"""`--where` on ls, compare and rm, `rhea tag`, and `--tag` on run and sweep, on real homes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clitext import answer_prompt, flat
from typer.testing import CliRunner

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import TAGS_FILE, RunWriter
from rhea_engine.runs.store import Store
from rhea_tui.cli import app
from rhea_tui.common import console

runner = CliRunner()


def finished_run(
    store: Store, name: str, best: float, status: str = "completed", **create: object
) -> None:
    """A run as a worker leaves it: two epochs whose best test loss is `best`, then `status`."""
    row = store.create_run({"epochs": 2, "learning_rate": best / 1000}, name=name, **create)
    assert row.path is not None
    with RunWriter(row.path) as writer:
        writer.start(total_epochs=2, device="cpu")
        for epoch in (1, 2):
            writer.epoch(epoch, {"train_loss": best * 2 / epoch, "test_loss": best * 2 / epoch})
        writer.status(status, **({"error": "boom"} if status == "failed" else {}))


@pytest.fixture
def home(rhea_home: Path) -> Path:
    with Store(rhea_home) as store:
        store.create_sweep("scan", {})
        finished_run(store, "scan-1", 0.2, sweep="scan")
        finished_run(store, "scan-2", 0.6, sweep="scan")
        finished_run(store, "scan-3", 0.9, "failed", sweep="scan")
        finished_run(store, "solo", 0.4, tags=["baseline"])
        finished_run(store, "broken", 0.8, "failed")
        refresh(store)
    return rhea_home


def listed(output: str) -> list[str]:
    """Run names of `rhea ls` output (first word of each line after the header)."""
    return [line.split()[0] for line in output.strip().splitlines()[1:] if line.strip()]


def test_ls_where_lists_the_matching_runs(home: Path) -> None:
    result = runner.invoke(app, ["ls", "--where", "status = completed and best_test_loss < 0.5"])
    assert result.exit_code == 0, result.output
    assert listed(result.output) == ["scan-1", "solo"]
    result = runner.invoke(
        app, ["ls", "--where", "sweep = scan", "--sort", "best_test_loss", "--desc"]
    )
    assert listed(result.output) == ["scan-3", "scan-2", "scan-1"]
    result = runner.invoke(app, ["ls", "--where", "name ~ 'scan-*'", "--status", "failed"])
    assert listed(result.output) == ["scan-3"]
    result = runner.invoke(app, ["ls", "--where", "learning_rate < 5e-4", "--json"])
    assert sorted(r["name"] for r in json.loads(result.output)) == ["scan-1", "solo"]
    result = runner.invoke(app, ["ls", "--where", "tag = nothing"])
    assert result.exit_code == 0 and "No run matches" in result.output


def test_malformed_filter_exits_2_with_a_caret(home: Path) -> None:
    expression = "status = completed and best_test_loss <"
    result = runner.invoke(app, ["ls", "--where", expression])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    shown = next(k for k, line in enumerate(lines) if expression in line)
    column = lines[shown].index(expression) + len(expression)
    assert lines[shown + 1].index("^") == column, result.stderr
    assert "expected a value after '<'" in flat(result.stderr)


def test_unknown_key_says_which_keys_exist(home: Path) -> None:
    result = runner.invoke(app, ["ls", "--where", "best_tset_loss < 0.5"])
    assert result.exit_code == 2
    text = flat(result.stderr)
    assert "there is no key 'best_tset_loss'" in text and "Did you mean best_test_loss" in text
    assert "status" in text and "learning_rate" in text and "tag" in text


def test_brackets_in_a_filter_are_shown_as_typed(home: Path) -> None:
    result = runner.invoke(app, ["ls", "--where", "name = [bold]x[/bold] and"])
    assert result.exit_code == 2 and "name = [bold]x[/bold] and" in result.stderr


def test_tag_add_remove_show_and_filter(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 160)  # the whole table, tags last
    result = runner.invoke(app, ["tag", "scan-2", "keep", "paper-fig3"])
    assert result.exit_code == 0 and "scan-2: keep, paper-fig3" in result.output
    result = runner.invoke(app, ["tag", "sweep:scan", "scanned"])
    assert result.exit_code == 0 and result.output.count("scanned") == 3
    result = runner.invoke(app, ["ls"])
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "tags" in result.output.splitlines()[0]
    assert "keep,paper-fig3,scanned" in lines["scan-2"] and "baseline" in lines["solo"]
    result = runner.invoke(app, ["show", "scan-2"])
    assert "keep,paper-fig3,scanned" in result.output
    result = runner.invoke(app, ["tag", "scan-2", "--remove", "paper-fig3"])
    assert result.exit_code == 0 and "scan-2: keep, scanned" in result.output
    saved = json.loads((home / "runs" / "scan-2" / TAGS_FILE).read_text())
    assert saved == {"tags": ["keep", "scanned"]}
    result = runner.invoke(app, ["ls", "--where", "tag = keep or tag = baseline"])
    assert listed(result.output) == ["scan-2", "solo"]
    result = runner.invoke(app, ["tag", "solo"])
    assert result.output.strip() == "solo: baseline"
    result = runner.invoke(app, ["tag", "solo", "no spaces"])
    assert result.exit_code == 2 and "not a valid tag" in flat(result.stderr)


def test_compare_where(home: Path) -> None:
    result = runner.invoke(app, ["compare", "--where", "best_test_loss < 0.7", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runs"] == ["scan-1", "scan-2", "solo"]
    result = runner.invoke(app, ["compare", "sweep:scan", "--where", "status = failed", "--json"])
    assert json.loads(result.output)["runs"] == ["scan-3"]
    result = runner.invoke(app, ["compare", "--where", "tag = nothing"])
    assert result.exit_code == 2 and "no run matches the filter" in flat(result.stderr)
    result = runner.invoke(app, ["compare"])
    assert result.exit_code == 2 and "give --where" in flat(result.stderr)


def test_rm_where_deletes_only_what_matches(home: Path) -> None:
    result = runner.invoke(app, ["rm", "--where", "status = failed"])
    assert result.exit_code == 2 and "scan-3, broken" in flat(result.stderr)
    result = runner.invoke(app, ["rm", "sweep:scan", "--where", "status = failed", "--yes"])
    assert result.exit_code == 0 and "Deleted scan-3." in result.output
    assert "Deleted sweep" not in result.output  # the sweep keeps its other runs
    names = [r.name for r in Store(home).list_runs()]
    assert names == ["scan-1", "scan-2", "solo", "broken"]
    result = runner.invoke(app, ["rm", "--where", "name = nothing", "--yes"])
    assert result.exit_code == 0 and "nothing was deleted" in result.output


def test_rm_where_refuses_runs_that_may_still_train(home: Path) -> None:
    with Store(home) as store:
        store.create_run({"epochs": 2}, name="live", status="running")
        store.update_run("live", pid=os.getpid())
    result = runner.invoke(app, ["rm", "--where", "name ~ '*l*'", "--yes"])
    assert result.exit_code == 2 and "live may still be training" in flat(result.stderr)
    assert {"live", "solo"} <= {r.name for r in Store(home).list_runs()}


def test_rm_where_lists_the_matches_and_asks(home: Path) -> None:
    shown = answer_prompt(home, ["rm", "--where", "status = failed"], b"n\n")
    assert "2 runs:" in shown and "scan-3" in shown and "broken" in shown, shown
    assert "Delete scan-3, broken and their directories?" in shown
    assert len(Store(home).list_runs()) == 5  # answered no
    shown = answer_prompt(home, ["rm", "--where", "status = failed"], b"y\n")
    assert "Deleted broken." in shown, shown
    assert [r.name for r in Store(home).list_runs()] == ["scan-1", "scan-2", "solo"]


def test_plot_where_draws_only_the_matching_runs(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig.svg"
    result = runner.invoke(
        app, ["plot", "--where", "best_test_loss < 0.7", "-o", str(out), "--metric", "test_loss"]
    )
    assert result.exit_code == 0, result.output
    assert "scan-1, scan-2, solo" in flat(result.output)
    text = out.read_text()
    assert "scan-1" in text and "solo" in text and "broken" not in text and "scan-3" not in text
    result = runner.invoke(app, ["plot", "sweep:scan", "--where", "tag = x", "-o", str(out)])
    assert result.exit_code == 2 and "no run among sweep:scan matches" in flat(result.stderr)


TINY = ["--epochs", "1", "--width", "8", "--nhidden", "0", "--device", "cpu"]
TINY += ["--set", "epoch_num_samples=1000", "--set", "batch_size=250"]


def test_run_and_sweep_tag_their_runs(rhea_home: Path, tiny_data: tuple[Path, Path]) -> None:
    data = ["--data", str(tiny_data[0]), "--stable-data", str(tiny_data[1])]
    result = runner.invoke(app, ["run", *TINY, *data, "--tag", "bad tag"])
    assert result.exit_code == 2 and "not a valid tag" in flat(result.stderr)
    assert not (rhea_home / "runs").exists() or not any((rhea_home / "runs").iterdir())
    result = runner.invoke(app, ["run", *TINY, *data, "--name", "one", "--tag", "baseline"])
    assert result.exit_code == 0, result.output
    args = ["sweep", "--lr", "1e-3,3e-3", "--name", "sc", *TINY, *data]
    result = runner.invoke(app, [*args, "--tag", "scan", "--tag", "cpu-only"])
    assert result.exit_code == 0, result.output
    with Store(rhea_home) as store:
        tags = {row.name: row.tags for row in store.list_runs()}
    assert tags == {"one": ["baseline"], "sc-1": ["cpu-only", "scan"], "sc-2": ["cpu-only", "scan"]}
    result = runner.invoke(app, ["ls", "--where", "tag = scan and status = completed"])
    assert listed(result.output) == ["sc-1", "sc-2"]

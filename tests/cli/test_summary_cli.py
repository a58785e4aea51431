"""`rhea ls`, `show` and `compare` print the same max ELN; an empty filter says what it hid."""

from __future__ import annotations

import json
import re
from pathlib import Path

from clitext import flat
from typer.testing import CliRunner

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_tui.cli import app
from rhea_tui.commands._runs_render import run_summary

runner = CliRunner()


def make_runs(home: Path) -> None:
    with Store(home) as store:
        for name, peak, sweep in (("a", 9e-4, "grid"), ("b", 4e-4, "grid"), ("c", 2e-4, None)):
            config = {
                "epochs": 3,
                "learning_rate": 1e-3 if name == "a" else 1e-4,
                "batch_size": 512 if name == "a" else 2048,
            }
            row = store.create_run(config, name=name, sweep=sweep, status="running")
            with RunWriter(row.path) as writer:
                writer.start(device="cpu", total_epochs=3, data=[], pid=1, host="elsewhere")
                for epoch, test_eln in enumerate([peak / 3, peak, peak / 9], start=1):
                    writer.epoch(
                        epoch,
                        {
                            "train_loss": 1.0 / epoch,
                            "test_loss": 1.2 / epoch,
                            "ELN_violation": 1e-2 / epoch,
                            "ELN_violation_test": test_eln,
                            "learning_rate": 5e-6,
                        },
                    )
                writer.status("completed")
        refresh(store)


def test_every_command_prints_the_same_max_eln(rhea_home: Path) -> None:
    make_runs(rhea_home)
    listing = runner.invoke(app, ["ls"])
    assert listing.exit_code == 0, listing.output
    header = listing.output.splitlines()[0]
    line = next(line for line in listing.output.splitlines() if line.startswith("a "))

    def cell(label: str) -> str:  # numbers are right-aligned under their header
        end = header.index(label) + len(label)
        return line[:end].split()[-1]

    assert cell("max ELN") == "0.0009"
    assert cell(" lr") == "0.001"  # the configured rate, not the scheduler's 5e-06
    shown = flat(runner.invoke(app, ["show", "a"]).output)
    assert "max ELN 9.000e-04 (test split, max over epochs)" in shown
    as_json = json.loads(runner.invoke(app, ["show", "a", "--json"]).output)
    assert as_json["max_eln_violation"] == 9e-4
    compared = json.loads(runner.invoke(app, ["compare", "a", "b", "--json"]).output)
    assert [e["max_ELN_violation"] for e in compared["table"]] == [9e-4, 4e-4]
    with Store(rhea_home) as store:
        summary = run_summary(store.get_run("a"))
    assert re.search(r"max ELN violation 9\.000e-04 \(test split, max over epochs\)", summary)


def test_ls_sweep_shows_the_swept_parameter(rhea_home: Path) -> None:
    make_runs(rhea_home)
    listing = runner.invoke(app, ["ls", "--sweep", "grid"])
    assert listing.exit_code == 0, listing.output
    header, *lines = listing.output.splitlines()
    assert header.split()[:3] == ["run", "sweep", "status"]
    # the swept batch size gets a column after lr; lr (also swept) is not shown twice
    assert header.split().count("lr") == 1 and "batch_size" in header
    end = header.index("batch_size") + len("batch_size")
    assert [line[:end].split()[-1] for line in lines] == ["512", "2048"]


def test_ls_with_a_filter_that_matches_nothing_says_so(rhea_home: Path) -> None:
    make_runs(rhea_home)
    result = runner.invoke(app, ["ls", "--status", "running"])
    assert result.exit_code == 0
    text = flat(result.output)
    assert "No runs yet" not in text
    assert "No run matches (status running); this home has 3 run(s) (3 completed)" in text
    empty = rhea_home / "empty"
    empty.mkdir()
    Store(empty).close()
    assert "No runs yet" in runner.invoke(app, ["ls", "--home", str(empty)]).output

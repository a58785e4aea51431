"""`rhea sweep --search tpe`: trials asked from the sampler, a killed front end resumed, budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import read_events
from rhea_engine.runs.store import Store
from rhea_engine.sweep.search import JOURNAL, sweep_folder
from rhea_tui.cli import app

runner = CliRunner()
TINY = [
    "--epochs",
    "2",
    "--set",
    "epoch_num_samples=1000",
    "--set",
    "batch_size=250",
    "--set",
    "heartbeat_seconds=1",
    "--device",
    "cpu",
]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from rhea_engine.data.synth import synth_to_dir

    folder = tmp_path_factory.mktemp("synth")
    synth_to_dir(folder, n=2000, seed=1)
    return ["--data", str(folder / "asymptotic.h5"), "--stable-data", str(folder / "stable.h5")]


def _study(home: Path, name: str):  # type: ignore[no-untyped-def]
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(sweep_folder(home, name) / JOURNAL)))
    return optuna.load_study(study_name=name, storage=storage)


def _starts(home: Path, run: str) -> int:
    return sum(1 for e in read_events(home / "runs" / run).events if e.get("type") == "start")


def test_tpe_sweep_of_four_trials_two_at_a_time(rhea_home: Path, data_files: list[str]) -> None:
    result = runner.invoke(
        app,
        [
            "sweep",
            "--search",
            "tpe",
            "--trials",
            "4",
            "--parallel",
            "2",
            "--lr",
            "1e-4:1e-2:log",
            "--width",
            "4:16",
            "--name",
            "tpe",
            *TINY,
            *data_files,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tpe search, 4 trials" in result.output
    assert "Sweep tpe finished: 4 completed" in result.output
    assert "asked the sampler" in result.output and "told the sampler" in result.output
    with Store(rhea_home) as store:
        rows = store.list_runs(sweep="tpe")
        assert [r.name for r in rows] == ["tpe-1", "tpe-2", "tpe-3", "tpe-4"]
        assert all(r.status == "completed" for r in rows)
        study = _study(rhea_home, "tpe")
        trials = {t.user_attrs["run"]: t for t in study.trials}
        assert sorted(trials) == [r.name for r in rows]
        for row in rows:
            trial = trials[row.name]
            assert trial.state.name == "COMPLETE"
            # the run trains exactly what the sampler chose, and the sampler heard its result
            assert row.config["learning_rate"] == pytest.approx(trial.params["lr"])
            assert row.config["width_shared"] == row.config["width_flux"] == trial.params["width"]
            assert 1e-4 <= trial.params["lr"] <= 1e-2 and 4 <= trial.params["width"] <= 16
            assert trial.values == [pytest.approx(row.best_test_loss)]
    # two at a time, never more
    spans = []
    for row in rows:
        times = [e["t"] for e in read_events(rhea_home / "runs" / row.name).events]
        spans.append((min(times), max(times)))
    assert all(sum(1 for s, e in spans if s <= t <= e) <= 2 for t, _ in spans)
    assert spans[1][0] < spans[0][1]


def test_killed_front_end_is_resumed_without_a_duplicate_trial(
    rhea_home: Path, data_files: list[str]
) -> None:
    args = ["sweep", "--search", "tpe", "--trials", "4", "--parallel", "2"]
    args += ["--lr", "1e-4:1e-2:log", "--name", "k", *TINY, *data_files]
    args[args.index("2", args.index("--epochs"))] = "3"  # --epochs 3
    front = subprocess.Popen(  # a real front end, killed without warning below
        [sys.executable, "-m", "rhea_tui.cli", *args],
        env={**os.environ, "RHEA_HOME": str(rhea_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        rows: list = []
        while time.monotonic() < deadline:
            if (rhea_home / "runs.db").exists():
                with Store(rhea_home) as store:
                    refresh(store)
                    rows = store.list_runs(sweep="k")
                if len(rows) >= 2 and any(r.status == "completed" for r in rows):
                    break
            time.sleep(0.3)
        assert len(rows) >= 2, "the front end did not start two trials"
        # while it lives, a second front end is refused
        refused = runner.invoke(app, ["sweep", "--resume", "k"])
        assert refused.exit_code == 2 and "already supervised" in refused.output
    finally:
        front.send_signal(signal.SIGKILL)
        front.wait(timeout=30)
    before = {r.name for r in rows}
    result = runner.invoke(app, ["sweep", "--resume", "k"])
    assert result.exit_code == 0, result.output
    with Store(rhea_home) as store:
        rows = store.list_runs(sweep="k")
    names = [r.name for r in rows]
    assert names == ["k-1", "k-2", "k-3", "k-4"], names
    assert before <= set(names)
    assert all(r.status == "completed" for r in rows), [(r.name, r.status) for r in rows]
    # no trial ran twice: one start event per run, one trial per run in the study
    assert all(_starts(rhea_home, n) == 1 for n in names)
    trials = [t for t in _study(rhea_home, "k").trials if t.state.name != "FAIL"]
    assert sorted(t.user_attrs["run"] for t in trials) == names
    assert all(t.state.name == "COMPLETE" for t in trials)


def test_epoch_budget_stops_launching(rhea_home: Path, data_files: list[str]) -> None:
    # four planned trials of 2 epochs; a budget of 3 epochs allows the first two to start only
    result = runner.invoke(
        app,
        [
            "sweep",
            "--seed",
            "1,2,3,4",
            "--max-epochs-total",
            "3",
            "--name",
            "b",
            *TINY,
            *data_files,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "budget of 3 epochs in total was spent" in " ".join(result.output.split())
    with Store(rhea_home) as store:
        rows = {r.name: r for r in store.list_runs(sweep="b")}
    assert [rows[n].status for n in ("b-1", "b-2")] == ["completed", "completed"]
    for name in ("b-3", "b-4"):
        assert rows[name].status == "stopped" and rows[name].last_epoch is None
        assert "Not started" in (rows[name].error or "")
        assert not (rhea_home / "runs" / name / "events.jsonl").exists()
    # a sampled search asks no trial once the budget is spent
    result = runner.invoke(
        app,
        ["sweep", "--search", "tpe", "--trials", "10", "--lr", "1e-4:1e-2:log"]
        + ["--max-epochs-total", "3", "--name", "bt", *TINY, *data_files],
    )
    assert result.exit_code == 0, result.output
    with Store(rhea_home) as store:
        assert [r.status for r in store.list_runs(sweep="bt")] == ["completed", "completed"]


def test_bad_search_options_exit_2_and_write_nothing(rhea_home: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"config_space": {"lr": {"type": "cubic"}}}))
    cases = [
        (["--search", "tpe", "--lr", "1e-4:1e-2:log"], "needs --trials N"),
        (["--search", "annealing", "--trials", "3", "--lr", "1e-4:1e-2:log"], "Unknown search"),
        (
            ["--search", "tpe", "--trials", "3", "--lr", "1e-4:1e-2:log", "--objective", "speed"],
            "Unknown objective",
        ),
        (
            [
                "--search",
                "tpe",
                "--trials",
                "3",
                "--lr",
                "1e-4:1e-2:log",
                "--objective",
                "test_loss",
                "--objective",
                "params",
                "--asha",
            ],
            "cannot prune",
        ),
        (["--search", "cmaes", "--trials", "3", "--nhidden", "0,1"], "numeric range"),
        (["--search", "tpe", "--trials", "3", "--width", "0:8"], "width_shared"),
        (
            ["--search", "tpe", "--trials", "3", "--lr", "1e-4:1e-2:log", "--budget", "soon"],
            "not a duration",
        ),
        (["--lr", "1e-3,1e-4", "--trials", "3"], "grid runs every combination"),
        (["--lr", "1e-3,1e-4", "--hard"], "--hard"),
        (["--lr", "1e-3,1e-4", "--gpus", "0,1"], "CUDA is not available"),
        (["--space", str(space), "--search", "tpe", "--trials", "2"], "type 'cubic'"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["sweep", *args, "--device", "auto"])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
        assert list(rhea_home.iterdir()) == []


def test_space_file_dry_run(rhea_home: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.json"
    space.write_text(
        json.dumps(
            {
                "metric": "validation_score",
                "mode": "min",
                "max_resource_attr": "epochs",
                "config_space": {
                    "epochs": 4,
                    "learning_rate": {"type": "loguniform", "lower": 1e-5, "upper": 1e-3},
                    "loader.batch_size": {"type": "randint", "lower": 64, "upper": 256},
                },
            }
        )
    )
    result = runner.invoke(
        app, ["sweep", "--space", str(space), "--search", "tpe", "--trials", "5", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)["spec"]
    assert spec["search"] == "tpe" and spec["trials"] == 5
    assert spec["space"]["loader.batch_size"] == {
        "type": "randint",
        "lower": 64,
        "upper": 256,
        "keys": ["batch_size"],
    }
    assert spec["objectives"] == [{"name": "test_loss", "direction": "minimize"}]
    assert list(rhea_home.iterdir()) == []

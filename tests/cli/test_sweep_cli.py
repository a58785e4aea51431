"""`rhea sweep`: a real local sweep of tiny runs, validation before anything is written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.runs import launch
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import read_events
from rhea_engine.runs.store import Store
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


def _intervals(home: Path, names: list[str]) -> list[tuple[float, float]]:
    out = []
    for name in names:
        times = [e["t"] for e in read_events(home / "runs" / name).events]
        out.append((min(times), max(times)))
    return out


def test_grid_parallel_2_completes_with_runs_named_after_sweep(
    rhea_home: Path, data_files: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    envs: list[dict[str, str]] = []
    real_start = launch.start_worker

    def spy(store, handle, **kwargs):  # type: ignore[no-untyped-def]
        envs.append(dict(kwargs.get("env") or {}))
        return real_start(store, handle, **kwargs)

    monkeypatch.setattr(launch, "start_worker", spy)
    # this machine has no GPU: pretend it has two for the --gpus check (the trials, in
    # their own processes, still train on the CPU under CUDA_VISIBLE_DEVICES)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    result = runner.invoke(
        app,
        [
            "sweep",
            "--lr",
            "1e-3,3e-3",
            "--width",
            "8,16",
            "--parallel",
            "2",
            "--gpus",
            "0,1",
            "--name",
            "grid",
            *TINY[:-2],  # --device auto: pinned to a GPU where there is one
            *data_files,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Sweep grid finished: 4 completed" in result.output
    assert "4/4 done (4 completed), 0 running, 0 queued" in result.output
    with Store(rhea_home) as store:
        rows = store.resolve_handles(["sweep:grid"])
        assert [r.name for r in rows] == ["grid-1", "grid-2", "grid-3", "grid-4"]
        assert all(r.status == "completed" and r.last_epoch == 2 for r in rows)
        assert [(r.config["learning_rate"], r.config["width_density"]) for r in rows] == [
            (1e-3, 8),
            (1e-3, 16),
            (3e-3, 8),
            (3e-3, 16),
        ]
        assert all(len(store.metrics(r.name, ["test_loss"])["test_loss"]) == 2 for r in rows)
        spec = store.sweeps()[0]["spec"]
        assert spec["axes"] == {"lr": [1e-3, 3e-3], "width": [8, 16]}
        assert spec["run"]["parallel"] == 2
    # never more than two at once, and the first two really overlapped
    spans = _intervals(rhea_home, ["grid-1", "grid-2", "grid-3", "grid-4"])
    for t in {s for s, _ in spans}:
        assert sum(1 for s, e in spans if s <= t <= e) <= 2
    assert spans[1][0] < spans[0][1]
    # each trial pinned to one GPU; the two running together on different ones
    assert [e.get("CUDA_VISIBLE_DEVICES") for e in envs[:2]] == ["0", "1"]
    assert all(e.get("CUDA_VISIBLE_DEVICES") in ("0", "1") for e in envs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "widht=1,2"], "Unknown config key 'widht'"),
        (["--width", "32,0"], "width_shared"),
        (["--lr", "1e-3,fast"], "learning_rate"),
        (["--lr", "1e-6:1e-3"], "--random"),
        (["--lr", "1e-3,1e-4", "--parallel", "0"], "--parallel"),
        (["--lr", "1e-3,1e-4", "--slurm"], "--partition"),
        (["--lr", "1e-3,1e-4", "--slurm", "--partition", "debug", "--time", "soon"], "--time"),
        (["--lr", "1e-3,1e-4", "--data", "/nonexistent/a.h5"], "does not exist"),
        (["--lr", "1e-3,1e-4", "--name", "../up"], "not a valid sweep name"),
        (["--lr", "1e-3,1e-4", "--asha", "--asha-min-epochs", "5", "--epochs", "5"], "no rung"),
        (["--random", "3", "--lr", "1e-3:1e-2:cubic"], "scale"),
        (["--lr", "1e-3,1e-4", "--gpus", "0,1"], "CUDA is not available"),
        (["--lr", "1e-3,1e-4", "--gpus", "0", "--device", "cpu"], "--device is cpu"),
        (["--lr", "1e-3,1e-4", "--cpus", "100000"], "asks for more cores"),
        (
            ["--lr", "1e-3", "--slurm", "--partition", "p", "--time", "0:10:00", "--cpus", "1"],
            "--cpus-per-run",
        ),
    ],
)
def test_bad_values_exit_2_and_write_nothing(
    rhea_home: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["sweep", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert list(rhea_home.iterdir()) == []


def test_existing_sweep_name_is_refused(rhea_home: Path, data_files: list[str]) -> None:
    with Store(rhea_home) as store:
        store.create_sweep("taken", {})
    result = runner.invoke(
        app, ["sweep", "--lr", "1e-3,1e-4", "--name", "taken", *TINY, *data_files]
    )
    assert result.exit_code == 2
    assert "already exists" in result.output
    with Store(rhea_home) as store:
        assert store.list_runs() == []


def test_random_search_dry_run_is_reproducible(rhea_home: Path) -> None:
    args = [
        "sweep",
        "--random",
        "5",
        "--lr",
        "1e-6:1e-3:log",
        "--width",
        "16:128:int",
        "--nhidden",
        "0,1",
        "--dry-run",
    ]
    first = runner.invoke(app, [*args, "--search-seed", "3"])
    second = runner.invoke(app, [*args, "--search-seed", "3"])
    third = runner.invoke(app, [*args, "--search-seed", "4"])
    assert first.exit_code == 0, first.output
    trials = json.loads(first.output)["trials"]
    assert len(trials) == 5 and all(
        1e-6 <= t["lr"] <= 1e-3 and 16 <= t["width"] <= 128 for t in trials
    )
    assert first.output == second.output != third.output
    assert list(rhea_home.iterdir()) == []


def test_detached_sweep_finishes_in_background(rhea_home: Path, data_files: list[str]) -> None:
    result = runner.invoke(
        app, ["sweep", "--seed", "1,2", "--parallel", "2", "--detach", *TINY, *data_files]
    )
    assert result.exit_code == 0, result.output
    assert "sweep1" in result.output and "background" in result.output
    deadline = time.monotonic() + 120
    with Store(rhea_home) as store:
        while time.monotonic() < deadline:
            refresh(store)
            rows = store.list_runs(sweep="sweep1")
            if rows and all(r.is_final for r in rows):
                break
            time.sleep(0.5)
        assert [(r.name, r.status) for r in rows] == [
            ("sweep1-1", "completed"),
            ("sweep1-2", "completed"),
        ]
    # the supervisor notices the end on its next pass and says so in its log
    log_file = rhea_home / "sweeps" / "sweep1.supervisor.log"
    while time.monotonic() < deadline and "done" not in log_file.read_text():
        time.sleep(0.2)
    assert "sweep sweep1: done (2 completed)" in log_file.read_text()


def test_attach_supervises_an_orphaned_sweep(rhea_home: Path, data_files: list[str]) -> None:
    # a sweep whose supervisor died before it started anything: its trials wait as queued
    from rhea_engine.config import resolve

    config = resolve(
        sets=[
            "epochs=1",
            "epoch_num_samples=1000",
            "batch_size=250",
            "device=cpu",
            f"database_list={data_files[1]}",
            f"stable_database_list={data_files[3]}",
        ]
    )
    with Store(rhea_home) as store:
        store.create_sweep("orphan", {"run": {"parallel": 1}})
        store.create_run(config, name="orphan-1", sweep="orphan")
    result = runner.invoke(app, ["sweep", "--resume", "orphan"])
    assert result.exit_code == 0, result.output
    assert "Sweep orphan finished: 1 completed" in result.output
    missing = runner.invoke(app, ["sweep", "--attach", "nope"])
    assert missing.exit_code == 2 and "There is no sweep 'nope'" in missing.output

"""`rhea run`: every bad input exits 2 with a message and writes nothing; a real run works."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from clitext import flat
from typer.testing import CliRunner

from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.store import Store
from rhea_tui.cli import app

runner = CliRunner()
FAST = [
    "--set",
    "epoch_num_samples=2000",
    "--set",
    "batch_size=512",
    "--width",
    "8",
    "--nhidden",
    "0",
]


def _rows(home: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(home / "runs.db") as conn:
        return conn.execute("SELECT id, name FROM runs ORDER BY id").fetchall()


@pytest.fixture
def home_with_one_run(rhea_home: Path) -> Path:
    Store(rhea_home).create_run({}, name="existing", status="completed")
    return rhea_home


def _bad_inputs(tmp: Path, asymptotic: Path, stable: Path) -> list[tuple[list[str], str]]:
    (tmp / "notes.txt").write_text("not hdf5\n")
    (tmp / "bad.toml").write_text("epochs = = 3\n")
    (tmp / "unknown.toml").write_text("epochs = 3\nlearning_rat = 0.1\n")
    (tmp / "empty.h5").write_bytes(b"")
    return [
        (["--set", "bogus_key=1"], "Unknown config key 'bogus_key'"),
        (["--set", "epochs=abc"], "expects an int"),
        (["--set", "activation=os.system"], "must be one of"),
        (["--set", "epochs"], "--set expects key=value"),
        (["--lr", "-1"], "learning_rate"),
        (["--epochs", "0"], "must be at least 1"),
        (["--batch-size", "lots"], "Invalid value"),
        (["--device", "gpu"], "Config key 'device'"),
        (["--config", str(tmp / "missing.toml")], "does not exist"),
        (["--config", str(tmp / "bad.toml")], "not valid TOML"),
        (["--config", str(tmp / "unknown.toml")], "learning_rat"),
        (["--data", str(tmp / "missing.h5")], "does not exist"),
        (["--data", str(tmp / "notes.txt")], "not an HDF5 file"),
        (["--data", str(tmp / "empty.h5")], "not an HDF5 file"),
        (["--data", str(stable), "--stable-data", str(stable)], "expects asymptotic files"),
        (["--data", str(asymptotic), "--stable-data", str(asymptotic)], "expects stable files"),
        (["--data", str(asymptotic)], "needs both"),
        (["--name", "../escape"], "not a valid run name"),
        (["--name", "a/b"], "not a valid run name"),
        (["--name", "existing"], "already exists"),
        (["--cpus", "0"], "--cpus must be at least 1"),
        (["--cpus", "100000"], "asks for more cores than Rhea may use"),
    ]


def test_bad_inputs_exit_2_and_write_nothing(
    home_with_one_run: Path, tmp_path: Path, tiny_data: tuple[Path, Path]
) -> None:
    home = home_with_one_run
    before = _rows(home)
    for args, message in _bad_inputs(tmp_path, *tiny_data):
        result = runner.invoke(app, ["run", *args, "--home", str(home)])
        assert result.exit_code == 2, (args, result.output)
        assert message in flat(result.output), (args, result.output)
        assert "Traceback" not in result.output
        assert _rows(home) == before, args
        assert sorted(p.name for p in (home / "runs").iterdir()) == ["existing"], args
        assert not (home / "data").exists(), args  # nothing generated for a bad command


BIG = "99999999999999999999"  # past SQLite's 64-bit integers


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", BIG], f"'epochs' must be at least 1 and at most 10000000; got {BIG}"),
        (["--seed", BIG], f"'random_seed' must be at least 0 and at most 4294967295; got {BIG}"),
        (["--set", f"epochs={BIG}"], "'epochs' must be at least 1"),
        (["--set", f"batch_size={2**63}"], "'batch_size' must be at least 1 and at most"),
        (["--width", "-5"], "'width_shared' must be at least 1"),
        (["--lr", "inf"], "'learning_rate' expects a float (a finite number); got inf"),
        (["--set", "learning_rate=1e400"], "'learning_rate' expects a float"),
        (["--set", "weight_decay=-inf"], "'weight_decay' expects a float"),
        (["--config", "inf.toml"], "'learning_rate' expects a float"),
        (["--config", "big.toml"], "'epochs' must be at least 1"),
        (["--name", "run9\n"], "not a valid run name"),
    ],
)
def test_values_out_of_range_exit_2_and_write_nothing(
    home_with_one_run: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "inf.toml").write_text("learning_rate = inf\n")
    (tmp_path / "big.toml").write_text(f"epochs = {BIG}\n")
    args = [str(tmp_path / a) if a.endswith(".toml") else a for a in args]
    before = _rows(home_with_one_run)
    result = runner.invoke(app, ["run", *args, "--home", str(home_with_one_run)])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output) and "Traceback" not in result.output
    assert _rows(home_with_one_run) == before
    assert sorted(p.name for p in (home_with_one_run / "runs").iterdir()) == ["existing"]


def test_cuda_without_cuda_exits_2(home_with_one_run: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = _rows(home_with_one_run)
    for device in ("cuda", "cuda:1"):
        result = runner.invoke(app, ["run", "--device", device, "--home", str(home_with_one_run)])
        assert result.exit_code == 2 and "CUDA is not available" in flat(result.output)
        assert _rows(home_with_one_run) == before


def test_foreground_run_end_to_end(rhea_home: Path) -> None:
    """The default synthetic data is generated once; the run completes and shows its metrics."""
    result = runner.invoke(app, ["run", "--epochs", "2", *FAST])
    assert result.exit_code == 0, result.output
    assert "epoch 1/2" in result.output and "epoch 2/2" in result.output
    assert "Generated the default synthetic data set" in result.output
    assert (rhea_home / "data" / "asymptotic.h5").is_file() and (
        rhea_home / "data" / "stable.h5"
    ).is_file()
    shown = runner.invoke(app, ["show", "run1"])
    assert shown.exit_code == 0, shown.output
    assert "completed" in shown.output and "train_loss" in shown.output and "Box3D" in shown.output
    data = json.loads(runner.invoke(app, ["show", "run1", "--json"]).output)
    assert data["status"] == "completed" and data["last_epoch"] == 2
    assert data["metrics"]["train_loss"] == pytest.approx(data["last_train_loss"])
    assert data["evaluation"] and data["checkpoints"]
    assert {item["kind"] for item in data["data"]} == {"asymptotic", "stable"}
    # a second run reuses the data set rather than generating it again
    again = runner.invoke(app, ["run", "--epochs", "1", *FAST, "--name", "second"])
    assert again.exit_code == 0, again.output
    assert "Generated" not in again.output
    listed = json.loads(runner.invoke(app, ["ls", "--json"]).output)
    assert [r["name"] for r in listed] == ["run1", "second"]


def test_failed_worker_exits_2_with_message(rhea_home: Path, tiny_data: tuple[Path, Path]) -> None:
    """A run whose worker meets a user's error prints it and exits 2; `rhea show` gives the
    message without a Python traceback (that is kept for Rhea's own faults)."""
    asymptotic, stable = tiny_data
    result = runner.invoke(
        app,
        [
            "run",
            "--epochs",
            "1",
            *FAST,
            "--data",
            str(asymptotic),
            "--stable-data",
            str(stable),
            "--set",
            "samples_per_database=1",  # one row per file: nothing left to test on
        ],
    )
    row = Store(rhea_home).get_run("run1")
    assert result.exit_code == 2, result.output
    assert row.status == "failed" and "Cannot split" in (row.error or "")
    assert row.traceback is None
    assert "ended as failed" in flat(result.output)
    shown = runner.invoke(app, ["show", "run1"])
    assert "Cannot split" in flat(shown.output) and "Traceback" not in shown.output


def test_ctrl_c_stops_the_worker_with_a_checkpoint(
    rhea_home: Path, tiny_data: tuple[Path, Path]
) -> None:
    """Ctrl-C in a foreground `rhea run` becomes SIGTERM: the run ends stopped, exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    rhea = str(Path(sys.executable).with_name("rhea"))
    command = [
        rhea,
        "run",
        "--epochs",
        "5000",
        *FAST,
        "--set",
        "output_every=1000",
        "--data",
        str(tiny_data[0]),
        "--stable-data",
        str(tiny_data[1]),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "RHEA_HOME": str(rhea_home)},
    )
    store = Store(rhea_home)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if (rhea_home / "runs.db").exists() and store.list_runs():
            refresh(store)
            if (store.get_run("run1").last_epoch or 0) >= 2:
                break
        time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError("the run did not reach epoch 2")
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=90)
    assert process.returncode == 130, output
    assert "rhea resume run1" in flat(output)
    refresh(store)
    row = store.get_run("run1")
    assert row.status == "stopped" and row.checkpoints
    assert row.last_epoch is not None and row.last_epoch >= 2

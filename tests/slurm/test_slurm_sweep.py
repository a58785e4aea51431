"""Sweeps on a real single-node Slurm: jobs complete with metrics; scancel from outside -> stopped."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.config import default_config
from rhea_engine.runs import slurm
from rhea_engine.runs.store import Store
from rhea_tui.cli import app

pytestmark = pytest.mark.slurm
runner = CliRunner()


def test_two_run_sweep_on_slurm(
    slurm_cluster: str, rhea_home: Path, shared_data: list[str]
) -> None:
    result = runner.invoke(
        app,
        [
            "sweep",
            "--slurm",
            "--partition",
            slurm_cluster,
            "--time",
            "00:10:00",
            "--gpus-per-run",
            "0",
            "--width",
            "8,16",
            "--epochs",
            "2",
            "--set",
            "epoch_num_samples=2000",
            "--set",
            "batch_size=500",
            "--set",
            "heartbeat_seconds=1",
            "--name",
            "hpc",
            *shared_data,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Slurm job" in result.output
    with Store(rhea_home) as store:
        rows = store.resolve_handles(["sweep:hpc"])
        assert [r.name for r in rows] == ["hpc-1", "hpc-2"]
        for row in rows:
            assert row.status == "completed", (row.name, row.status, row.error)
            assert row.slurm_job_id and row.slurm_job_id.isdigit()
            assert row.last_epoch == 2 and row.best_test_loss is not None
            assert [e for e, _ in store.metrics(row.name, ["train_loss"])["train_loss"]] == [1, 2]
        assert {r.config["width_flux"] for r in rows} == {8, 16}
    # both really went through Slurm, and their jobs end as COMPLETED once the worker exits
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = slurm.query_states([str(r.slurm_job_id) for r in rows])
        if {s.state for s in states.values()} == {"COMPLETED"}:
            break
        time.sleep(0.5)
    assert {s.state for s in states.values()} == {"COMPLETED"}


def test_job_cancelled_from_outside_is_stopped_with_reason(
    slurm_cluster: str, rhea_home: Path, shared_data: list[str]
) -> None:
    config = default_config().replace(
        epochs=200,
        epoch_num_samples=5000,
        batch_size=500,
        device="cpu",
        heartbeat_seconds=1.0,
        database_list=[shared_data[1]],
        stable_database_list=[shared_data[3]],
        width_shared=8,
        width_stability=8,
        width_growthrate=8,
        width_density=8,
        width_flux=8,
    )
    options = slurm.SlurmOptions(partition=slurm_cluster, time="00:10:00", gpus_per_run=0)
    with Store(rhea_home) as store:
        row = store.create_run(config, name="long")
        job_id = slurm.submit(rhea_home, row.path, options, "long")
        store.update_run("long", slurm_job_id=job_id)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            store.ingest()
            current = store.get_run("long")
            if current.last_epoch:
                break
            time.sleep(0.5)
        assert current.status == "running" and current.last_epoch, (current.status, current.error)
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        while time.monotonic() < deadline:
            store.ingest()
            slurm.refresh_slurm_statuses(store)
            current = store.get_run("long")
            if current.status != "running" and current.error:
                break
            time.sleep(0.5)
        assert current.status == "stopped", (current.status, current.error)
        assert f"Slurm job {job_id} was cancelled" in (current.error or "")
        # the worker got SIGTERM and left a checkpoint to resume from
        assert any(c["kind"] == "stop" for c in current.checkpoints)
        assert current.last_epoch < 200


def test_unknown_partition_or_missing_gpus_exit_2_before_writing(
    slurm_cluster: str, rhea_home: Path
) -> None:
    base = ["sweep", "--slurm", "--time", "00:05:00", "--lr", "1e-3,1e-4"]
    result = runner.invoke(app, [*base, "--partition", "nosuch"], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "no partition 'nosuch'" in result.output
    assert slurm_cluster in result.output  # the known partitions are listed
    result = runner.invoke(app, [*base, "--partition", slurm_cluster], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "has no GPUs" in result.output
    assert list(rhea_home.iterdir()) == []

"""Sweeps on a real single-node Slurm: jobs complete with metrics; scancel from outside -> stopped."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.config import default_config
from rhea_engine.errors import SlurmError
from rhea_engine.runs import slurm
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rows import RunRow
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


def test_tpe_sweep_on_slurm_asks_each_trial_and_submits_it(
    slurm_cluster: str, rhea_home: Path, shared_data: list[str]
) -> None:
    result = runner.invoke(
        app,
        ["sweep", "--slurm", "--partition", slurm_cluster, "--time", "00:10:00"]
        + ["--gpus-per-run", "0", "--search", "tpe", "--trials", "2", "--parallel", "2"]
        + ["--lr", "1e-4:1e-2:log", "--epochs", "2", "--set", "epoch_num_samples=2000"]
        + ["--set", "batch_size=500", "--set", "heartbeat_seconds=1", "--name", "hpt"]
        + shared_data,
    )
    assert result.exit_code == 0, result.output
    assert "asked the sampler" in result.output and "Slurm job" in result.output
    with Store(rhea_home) as store:
        rows = store.list_runs(sweep="hpt")
        assert [r.name for r in rows] == ["hpt-1", "hpt-2"]
        for row in rows:
            assert row.status == "completed", (row.name, row.status, row.error)
            assert row.slurm_job_id and row.slurm_job_id.isdigit()
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = rhea_home / "sweeps" / "hpt" / "optuna.journal"
    study = optuna.load_study(
        study_name="hpt", storage=JournalStorage(JournalFileBackend(str(journal)))
    )
    told = {t.user_attrs["run"]: t for t in study.trials}
    assert sorted(told) == ["hpt-1", "hpt-2"]
    assert all(t.state.name == "COMPLETE" for t in told.values())
    for row in rows:
        assert row.config["learning_rate"] == pytest.approx(told[row.name].params["lr"])


def _long_run(store: Store, name: str, shared_data: list[str], partition: str) -> str:
    """Submit a run of many short epochs on Slurm; returns its job id once it has epochs."""
    config = default_config().replace(
        epochs=100000,
        epoch_num_samples=2000,
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
    options = slurm.SlurmOptions(partition=partition, time="00:10:00", gpus_per_run=0)
    row = store.create_run(config, name=name)
    job_id = slurm.submit(store.home, row.path, options, name)
    store.update_run(name, slurm_job_id=job_id)
    _until(store, name, lambda r: bool(r.last_epoch), 120)
    return job_id


def _until(store: Store, name: str, done: Callable[[RunRow], bool], seconds: float) -> RunRow:
    """Ingest and refresh from Slurm, as a front end does, until done(row) or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        refresh(store)
        slurm.refresh_slurm_statuses(store)
        row = store.get_run(name)
        if done(row) or time.monotonic() > deadline:
            return row
        time.sleep(0.5)


def test_job_cancelled_from_outside_is_stopped_with_reason(
    slurm_cluster: str, rhea_home: Path, shared_data: list[str]
) -> None:
    with Store(rhea_home) as store:
        job_id = _long_run(store, "long", shared_data, slurm_cluster)
        current = store.get_run("long")
        assert current.status == "running" and current.last_epoch, (current.status, current.error)
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        current = _until(store, "long", lambda r: r.status != "running" and bool(r.error), 120)
        assert current.status == "stopped", (current.status, current.error)
        assert f"Slurm job {job_id} was cancelled" in (current.error or "")
        # the worker got SIGTERM and left a checkpoint to resume from
        assert any(c["kind"] == "stop" for c in current.checkpoints)
        assert current.last_epoch < 100000


def test_preempted_job_is_requeued_and_resumes_from_its_checkpoint(
    slurm_cluster: str, rhea_home: Path, shared_data: list[str]
) -> None:
    """USR2 is Slurm's warning before a time limit or a preemption: the worker stops with a
    checkpoint, the job requeues itself, and the run continues from that checkpoint."""
    with Store(rhea_home) as store:
        job_id = _long_run(store, "preempted", shared_data, slurm_cluster)
        try:
            subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
            row = _until(store, "preempted", lambda r: r.status == "queued", 90)
            assert row.status == "queued", (row.status, row.error)
            assert f"Slurm job {job_id} was requeued" in (row.error or "")
            stops = [c["epoch"] for c in row.checkpoints if c["kind"] == "stop"]
            assert len(stops) == 1
            # resuming by hand would start a second job for the same run: refused
            with pytest.raises(SlurmError, match=f"still has Slurm job {job_id} .PENDING"):
                slurm.resubmit(store, "preempted")
            assert store.get_run("preempted").slurm_job_id == job_id
            # a requeued job waits (BeginTime) before it may start again; let it start now
            subprocess.run(
                ["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True, timeout=30
            )
            row = _until(
                store,
                "preempted",
                lambda r: r.status == "running" and r.last_epoch > stops[0] + 3,
                120,
            )
            assert row.status == "running" and row.last_epoch > stops[0] + 3, (
                row.status,
                row.error,
            )
            assert row.slurm_job_id == job_id and not row.error
            # resumed, not restarted: one metric per epoch, 1 .. last, none repeated
            epochs = [e for e, _ in store.metrics("preempted", ["train_loss"])["train_loss"]]
            assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= row.last_epoch - 1
            log = (Path(row.path) / "stdout.log").read_text()
            assert f"stopped after epoch {stops[0]}; checkpoint written" in log
        finally:
            subprocess.run(["scancel", job_id], check=False, timeout=30)
        row = _until(store, "preempted", lambda r: r.status != "running", 60)
        assert row.status == "stopped", (row.status, row.error)


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

"""Status polling against the real Slurm: batched (one query for all jobs) and rate-limited."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from rhea_engine.config import default_config
from rhea_engine.runs import slurm
from rhea_engine.runs.store import Store

pytestmark = pytest.mark.slurm


def _sbatch(tmp_path: Path, seconds: int) -> str:
    out = subprocess.run(
        ["sbatch", "--parsable", "-o", str(tmp_path / "%j.out"), "--wrap", f"sleep {seconds}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.strip().split(";")[0]


def test_poller_batches_and_rate_limits(slurm_cluster: str, tmp_path: Path) -> None:
    jobs = [_sbatch(tmp_path, 30) for _ in range(3)]
    try:
        poller = slurm.Poller(interval=10.0)
        states = poller.states(jobs)
        assert set(states) == set(jobs) and poller.queries == 1
        assert all(s.state in ("PENDING", "RUNNING") for s in states.values())
        # asked again within the interval: the cached answer, no new query
        poller.states(jobs)
        poller.states(jobs[:1])
        assert poller.queries == 1
        subprocess.run(["scancel", jobs[0]], check=True, timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if poller.states(force=True)[jobs[0]].state == "CANCELLED":
                break
            time.sleep(0.3)
        assert poller.states()[jobs[0]].state == "CANCELLED"
    finally:
        subprocess.run(["scancel", *jobs], timeout=30, check=False)


def test_refresh_marks_a_cancelled_pending_run_stopped(slurm_cluster: str, tmp_path: Path) -> None:
    # a job held in the queue never starts its worker; cancelling it still ends the run
    with Store(tmp_path / "home") as store:
        row = store.create_run(default_config(), name="held")
        job = subprocess.run(
            ["sbatch", "--parsable", "--hold", "-o", str(tmp_path / "%j.out"), "--wrap", "true"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        store.update_run(row.name, slurm_job_id=job)
        assert slurm.refresh_slurm_statuses(store, force=True) == 0
        assert store.get_run("held").status == "queued"
        assert slurm.job_alive(job) is True
        slurm.cancel(job)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if slurm.refresh_slurm_statuses(store, force=True):
                break
            time.sleep(0.3)
        held = store.get_run("held")
        assert held.status == "stopped" and f"Slurm job {job} was cancelled" in (held.error or "")
        # a cancelled job is not "gone" for the lost-run check: its reason comes from Slurm
        assert slurm.job_alive(job) is None

"""The refresher settles a run whose worker is gone without a final status (real processes).

Lost: killed from outside (SIGKILL, the OOM killer), whenever it happens, with what is known.
Failed: it died of an error of its own, which its output shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rhea_engine.runs import lifecycle, rundir
from rhea_engine.runs.procs import this_host
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import RunRow, Store

# a stand-in for the worker's first seconds: it says it runs, prints, and loads for a while
LOADING = (
    "import sys, time\n"
    "from rhea_engine.runs.rundir import RunWriter\n"
    "RunWriter(sys.argv[1]).status('running')\n"
    "print('loading the training data', flush=True)\n"
    "time.sleep(120)\n"
)


def _launch(store: Store, row: RunRow, code: str) -> subprocess.Popen[bytes]:
    """Start `code` as the run's worker, the way `launch.start_worker` does."""
    assert row.path is not None
    store.set_status(row.name, "running", host=this_host(), pid=None, slurm_job_id=None)
    with rundir.open_output(row.path) as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(row.path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    store.update_run(row.name, pid=process.pid)
    return process


def _wait_for_output(row: RunRow, text: str, timeout: float = 60.0) -> None:
    assert row.path is not None
    deadline = time.monotonic() + timeout
    while text not in (row.path / rundir.STDOUT_FILE).read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the process never printed {text!r}"
        time.sleep(0.05)


def _sigkill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_sigkill_before_the_first_epoch_is_lost(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    process = _launch(store, row, LOADING)
    _wait_for_output(row, "loading the training data")
    _sigkill(process)
    refresh(store)
    run = store.get_run(row.name)
    assert run.status == "lost", run.error
    error = run.error or ""
    assert f"pid {process.pid} on {this_host()}" in error
    assert "before its first epoch" in error and "last sign of life" in error
    assert f"rhea resume {row.name} --from-scratch" in error
    assert "loading the training data" in (run.traceback or "")  # the output, as it ended
    store.rebuild()  # the verdict is kept in status.json
    assert store.get_run(row.name).status == "lost"


def test_error_in_the_output_is_failed(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    crash = LOADING.replace("time.sleep(120)", "import rhea_engine.no_such_module")
    process = _launch(store, row, crash)
    process.wait(timeout=60)
    refresh(store)
    run = store.get_run(row.name)
    assert run.status == "failed", run.error
    assert "the reason is in its output" in (run.error or "")
    assert "ModuleNotFoundError" in (run.traceback or "")


def test_an_earlier_launch_output_does_not_count(rhea_home: Path) -> None:
    """A run that once failed with a traceback, resumed and then SIGKILLed, is lost."""
    store = Store(rhea_home)
    row = store.create_run({})
    crash = LOADING.replace("time.sleep(120)", "raise RuntimeError('first launch')")
    _launch(store, row, crash).wait(timeout=60)
    refresh(store)
    assert store.get_run(row.name).status == "failed"
    process = _launch(store, row, LOADING)
    _wait_for_output(row, "loading the training data")
    _sigkill(process)
    refresh(store)
    run = store.get_run(row.name)
    assert run.status == "lost", run.error
    assert "RuntimeError" not in (run.traceback or "")


def test_dead_local_worker_is_lost_at_once(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    code = (
        "import sys; from rhea_engine.runs.rundir import RunWriter; "
        "w = RunWriter(sys.argv[1]); w.start(total_epochs=5); w.epoch(1, {'train_loss': 1.0})"
    )
    subprocess.run([sys.executable, "-c", code, str(row.path)], check=True)
    refresh(store)
    run = store.get_run(row.name)
    assert run.status == "lost" and f"rhea resume {row.name}`" in (run.error or "")
    assert "after epoch 1" in (run.error or "")
    assert run.last_epoch == 1
    store.rebuild()
    assert store.get_run(row.name).status == "lost"


def test_a_live_worker_is_left_alone(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({})
    process = _launch(store, row, LOADING)
    try:
        _wait_for_output(row, "loading the training data")
        refresh(store)
        assert store.get_run(row.name).status == "running"
    finally:
        _sigkill(process)


def test_remote_run_is_lost_only_when_heartbeat_is_stale(rhea_home: Path) -> None:
    store = Store(rhea_home)
    row = store.create_run({"heartbeat_seconds": 1.0})
    with RunWriter(row.path) as writer:
        writer.start(host="node-elsewhere", pid=12345)
        writer.emit("heartbeat", epoch=0)
    refresh(store)
    assert store.get_run(row.name).status == "running"
    # the same run seen 31 s later, through the rule itself
    run = store.get_run(row.name)
    assert lifecycle.verdict(run, None, now=time.time() + 10) is None
    verdict = lifecycle.verdict(run, None, now=time.time() + 31)
    assert verdict is not None
    status, error, _ = verdict
    assert status == "lost" and "pid 12345 on node-elsewhere" in error


@pytest.mark.parametrize("line", ['  File "x.py", line 3', "epoch 3/10  train_loss 1e-3"])
def test_ordinary_output_is_not_an_error(line: str) -> None:
    assert not lifecycle._ERROR_RE.search(line)

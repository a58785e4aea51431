"""The logging API: a script's run directory, its final statuses, and the store picking it up."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rhea_engine.errors import DivergedError, RunError
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import read_config, read_events
from rhea_engine.runs.store import Store
from rhea_engine.tracking import is_script_run, start_run

REPO = Path(__file__).resolve().parents[2]


def _events(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in read_events(path).events if kind is None or e["type"] == kind]


def _wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def test_a_run_writes_the_run_directory_format(tmp_path: Path) -> None:
    config = {"learning_rate": 1e-4, "epochs": 3, "path": tmp_path, "lrs": (1e-3, np.float32(2))}
    with start_run(name="my-try", config=config, home=tmp_path, capture_output=False) as run:
        for epoch in range(1, 4):
            run.log(epoch, {"test_loss": 1.0 / epoch, "ELN_violation_test": np.float64(0.1)})
        checkpoint = tmp_path / "model.pt"
        checkpoint.write_bytes(b"weights")
        copied = run.checkpoint(3, checkpoint)
    path = tmp_path / "runs" / "my-try"
    assert run.path == path and copied == path / "checkpoints" / "model.pt"
    assert copied.read_bytes() == b"weights"
    stored = read_config(path)
    assert stored["config"] == {
        "learning_rate": 1e-4,
        "epochs": 3,
        "path": str(tmp_path),
        "lrs": [1e-3, 2.0],
    }
    assert stored["meta"]["source"] == "script" and is_script_run(path)
    start = _events(path, "start")[0]
    assert start["pid"] == os.getpid() and start["host"] and start["total_epochs"] == 3
    assert [e["epoch"] for e in _events(path, "epoch")] == [1, 2, 3]
    assert _events(path, "epoch")[2]["metrics"] == {"test_loss": 1 / 3, "ELN_violation_test": 0.1}
    assert _events(path, "checkpoint")[0]["path"] == "checkpoints/model.pt"
    final = _events(path, "status")[-1]
    assert final["status"] == "completed" and final["epoch"] == 3
    assert not (path / ".model.pt.tmp").exists()


def test_names_are_allocated_and_never_reused(tmp_path: Path) -> None:
    (tmp_path / "runs" / "run4").mkdir(parents=True)
    with start_run(home=tmp_path, capture_output=False) as first:
        pass
    with start_run(home=tmp_path, capture_output=False) as second:
        pass
    assert (first.name, second.name) == ("run5", "run6")
    with pytest.raises(RunError, match="already exists"):
        start_run(name="run5", home=tmp_path)
    with pytest.raises(RunError, match="not a valid run name"):
        start_run(name="../escape", home=tmp_path)
    with pytest.raises(RunError, match="must be a dict"):
        start_run(name="bad-config", config=[1, 2], home=tmp_path)
    assert not (tmp_path / "runs" / "bad-config").exists()


def test_bad_metrics_are_clear_errors(tmp_path: Path) -> None:
    with start_run(name="x", home=tmp_path, capture_output=False) as run:
        with pytest.raises(RunError, match="Metric 'loss' has the value 'low'"):
            run.log(1, {"loss": "low"})
        with pytest.raises(RunError, match="Metric 'flag'"):
            run.log(1, {"flag": True})
        with pytest.raises(RunError, match="whole number"):
            run.log(1.5, {"loss": 1.0})  # type: ignore[arg-type]
        with pytest.raises(RunError, match="dict"):
            run.log(1, [1.0])  # type: ignore[arg-type]
        with pytest.raises(RunError, match="does not exist"):
            run.checkpoint(1, tmp_path / "missing.pt")
        with pytest.raises(RunError, match="Unknown checkpoint kind"):
            run.checkpoint(1, __file__, kind="sometimes")
        run.log(2, {"loss": math.inf})  # non-finite values are kept, as Rhea's worker keeps them
    assert _events(run.path, "epoch")[0]["metrics"] == {"loss": "inf"}
    with pytest.raises(RunError, match="has ended"):
        run.log(3, {"loss": 1.0})


def test_an_exception_ends_the_run_failed_with_its_traceback(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        with start_run(name="crash", home=tmp_path, capture_output=False) as run:
            run.log(1, {"loss": 1.0})
            _ = 1 / 0
    final = _events(run.path, "status")[-1]
    assert final["status"] == "failed" and final["epoch"] == 1
    assert final["error"] == "ZeroDivisionError: division by zero"
    assert "Traceback (most recent call last)" in final["traceback"]
    assert "_ = 1 / 0" in final["traceback"]


def test_diverged_and_interrupted_runs(tmp_path: Path) -> None:
    with pytest.raises(DivergedError):
        with start_run(name="nan", home=tmp_path, capture_output=False) as run:
            raise DivergedError(4, "ndens")
    final = _events(run.path, "status")[-1]
    assert (final["status"], final["epoch"], final["task"]) == ("diverged", 4, "ndens")
    with pytest.raises(KeyboardInterrupt):
        with start_run(name="ctrl-c", home=tmp_path, capture_output=False) as run:
            run.log(2, {"loss": 1.0})
            raise KeyboardInterrupt
    assert _events(run.path, "status")[-1]["status"] == "stopped"


def test_config_from_a_namespace_and_heartbeats_from_a_thread(tmp_path: Path) -> None:
    namespace = argparse.Namespace(lr=0.1, layers=[8, 8])
    with start_run(
        name="beats", config=namespace, home=tmp_path, heartbeat_seconds=0.05, capture_output=False
    ) as run:
        run.log(7, {"loss": 1.0})
        _wait_for(lambda: any(e["epoch"] == 7 for e in _events(run.path, "heartbeat")))
    assert read_config(run.path)["config"] == {"lr": 0.1, "layers": [8, 8]}
    count = len(_events(run.path, "heartbeat"))
    time.sleep(0.2)
    assert len(_events(run.path, "heartbeat")) == count  # the thread ended with the run


def test_printed_output_goes_to_stdout_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError):
        with start_run(name="talk", home=tmp_path) as run:
            print("epoch 1 looks fine")
            raise ValueError("the batch was empty")
    print("after the run")
    log = (run.path / "stdout.log").read_text()
    assert "epoch 1 looks fine" in log and "ValueError: the batch was empty" in log
    assert "after the run" not in log
    assert "epoch 1 looks fine" in capsys.readouterr().out  # still printed as usual


def test_the_store_adopts_a_script_run_without_runs_db_being_opened(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.list_runs() == []
    run = start_run(name="live", config={"epochs": 5}, home=tmp_path, capture_output=False)
    run.log(1, {"train_loss": 2.0, "test_loss": 3.0, "ELN_violation": 0.5, "my_metric": 7.0})
    refresh(store)
    row = store.get_run("live")
    assert (row.status, row.pid, row.last_epoch, row.total_epochs) == ("running", os.getpid(), 1, 5)
    assert row.best_test_loss == 3.0 and row.max_eln_violation == 0.5
    assert store.metrics("live", ["my_metric"]) == {"my_metric": [(1, 7.0)]}
    run.log(2, {"test_loss": 1.0})
    run.finish()
    refresh(store)
    row = store.get_run("live")
    assert (row.status, row.last_epoch, row.best_test_loss) == ("completed", 2, 1.0)
    # a run directory that is not a run (no config.json) is left alone, and looked at again
    (tmp_path / "runs" / "notes").mkdir()
    refresh(store)
    assert [r.name for r in store.list_runs()] == ["live"]
    store.close()


def test_resume_refuses_a_script_run(tmp_path: Path) -> None:
    from rhea_engine.runs.launch import resume_run

    with pytest.raises(ValueError):
        with start_run(name="mine", home=tmp_path, capture_output=False) as run:
            path = run.checkpoint_dir / "m.pt"
            path.write_bytes(b"x")
            run.checkpoint(1, path)
            raise ValueError("boom")
    with Store(tmp_path) as store, pytest.raises(RunError, match="run the script again"):
        resume_run(store, "mine")


SCRIPT = textwrap.dedent(
    """
    import sys
    from rhea_engine.tracking import start_run
    mode = sys.argv[2]
    with start_run(name=mode, config={"epochs": 50, "mode": mode}, home=sys.argv[1],
                   heartbeat_seconds=0.2) as run:
        for epoch in range(1, 51):
            run.log(epoch, {"train_loss": 1.0 / epoch, "test_loss": 2.0 / epoch})
            if epoch == 3:
                print("three epochs", flush=True)
                if mode == "fail":
                    raise RuntimeError("the loss head got a NaN batch")
                sys.stdin.readline()  # the test decides what happens next
    print("after the with block", flush=True)
    """
)


def _script(home: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(home), mode],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _row_when(store: Store, name: str, predicate: Any) -> Any:
    def ready() -> Any:
        refresh(store)
        rows = [r for r in store.list_runs() if r.name == name]
        return rows[0] if rows and predicate(rows[0]) else None

    return _wait_for(ready)


@pytest.mark.parametrize("mode", ["fail", "kill", "stop"])
def test_a_script_ends_failed_lost_or_stopped(tmp_path: Path, mode: str) -> None:
    from rhea_engine.runs.launch import stop_run

    store = Store(tmp_path)
    script = _script(tmp_path, mode)
    try:
        assert script.stdout is not None
        assert script.stdout.readline().strip() == "three epochs"
        if mode == "fail":
            assert script.wait(timeout=60) == 1
            assert "the loss head got a NaN batch" in script.stderr.read()  # type: ignore[union-attr]
            row = _row_when(store, mode, lambda r: r.status == "failed")
            assert row.error == "RuntimeError: the loss head got a NaN batch"
            assert "Traceback" in store.get_run(mode).traceback
            return
        row = _row_when(store, mode, lambda r: r.status == "running" and r.last_epoch == 3)
        assert row.pid == script.pid
        if mode == "kill":
            script.send_signal(signal.SIGKILL)  # no chance to write anything
            script.wait(timeout=30)
            row = _row_when(store, mode, lambda r: r.status == "lost")
            assert f"pid {script.pid}" in (row.error or "")
            assert "run the script again" in (row.error or "")
            assert "rhea resume" not in (row.error or "")  # which refuses a script's run
        else:
            assert "SIGTERM" in stop_run(store, store.get_run(mode))
            assert script.wait(timeout=30) == 0  # the with block ends, the script goes on
            assert "after the with block" in script.stdout.read()
            row = _row_when(store, mode, lambda r: r.status == "stopped")
            assert row.last_epoch == 3
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
        store.close()


def test_the_example_script_logs_a_completed_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "tracking_loop.py"),
            "--home",
            str(tmp_path),
            "--name",
            "example",
            "--epochs",
            "6",
            "--samples",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with Store(tmp_path) as store:
        refresh(store)
        row = store.get_run("example")
        assert (row.status, row.last_epoch, row.total_epochs) == ("completed", 6, 6)
        names = set(store.metric_names("example"))
        assert {"ndens_test_loss", "stability_train_loss", "ELN_violation_test"} <= names
        assert [c["path"] for c in row.checkpoints] == [
            "checkpoints/model0005.pt",
        ]
        assert row.config["learning_rate"] == 3e-3
    assert "epoch 6" in (tmp_path / "runs" / "example" / "stdout.log").read_text()
    assert json.loads((tmp_path / "runs" / "example" / "config.json").read_text())["meta"]["script"]

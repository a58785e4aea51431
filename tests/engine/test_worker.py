"""The worker process: real subprocesses writing a real run directory, polled with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from train_fixtures import tiny_config, write_h5_sets

from rhea_engine.checkpoint import load_checkpoint
from rhea_engine.runs import worker
from rhea_engine.runs.rundir import read_events, run_dir, write_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def h5_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_h5_sets(tmp_path_factory.mktemp("data"), n=2000)


def _make_run(home: Path, name: str, h5: tuple[Path, Path], **changes: Any) -> Path:
    config = tiny_config(
        database_list=(str(h5[0]),),
        stable_database_list=(str(h5[1]),),
        heartbeat_seconds=0.2,
        **changes,
    )
    path = run_dir(home, name)
    write_config(path, config.to_dict(), {"name": name})
    return path


def _spawn(path: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(path / "stdout.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "rhea_engine.runs.worker", str(path), *extra],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait(proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _events(path: Path, type_: str | None = None) -> list[dict[str, Any]]:
    events = read_events(path).events
    return [e for e in events if type_ is None or e["type"] == type_]


def _final_status(path: Path) -> dict[str, Any]:
    return _events(path, "status")[-1]


def test_worker_completes(tmp_path: Path, h5_sets: tuple[Path, Path]) -> None:
    path = _make_run(tmp_path, "run1", h5_sets, epochs=3, output_every=2)
    assert _wait(_spawn(path)) == 0
    status = _final_status(path)
    assert status["status"] == "completed" and status["epoch"] == 3
    start = _events(path, "start")[0]
    assert start["device"] == "cpu" and start["total_epochs"] == 3 and start["pid"] > 0
    assert {d["kind"] for d in start["data"]} == {"asymptotic", "stable"}
    assert all(len(d["sha256"]) == 64 for d in start["data"])
    assert "git_commit" in start and "git_dirty" in start
    assert [e["epoch"] for e in _events(path, "epoch")] == [1, 2, 3]
    kinds = {(e["epoch"], e["kind"]) for e in _events(path, "checkpoint")}
    assert (2, "periodic") in kinds and (3, "final") in kinds
    assert (path / "checkpoints" / "epoch_00002.pt").is_file() and (
        path / "checkpoints" / "best.pt"
    ).is_file()
    results = _events(path, "evaluation")[0]["results"]
    assert {
        "model_ndens_mean_err",
        "box3d_ndens_mean_err",
        "identity_ndens_mean_err",
        "model_stability_accuracy",
    } <= set(results)
    # the per-sample summary `rhea plot --kind evaluation` draws, from the same predictions
    summary = json.loads((path / "evaluation.json").read_text())
    matrix = summary["stability"]["matrices"]["model"]
    assert sum(map(sum, matrix)) == results["n_test_stable"]
    assert (matrix[0][0] + matrix[1][1]) / results["n_test_stable"] == pytest.approx(
        results["model_stability_accuracy"]
    )
    assert sum(summary["ndens_e_error"]["counts"]["box3d"]) == 2 * results["n_test_asymptotic"]
    assert _events(path, "heartbeat")
    assert "epoch 3/3" in (path / "stdout.log").read_text()


def test_worker_sigterm_stops_with_checkpoint_then_resumes(
    tmp_path: Path, h5_sets: tuple[Path, Path]
) -> None:
    path = _make_run(tmp_path, "run2", h5_sets, epochs=10_000, output_every=1000)
    proc = _spawn(path)
    deadline = time.monotonic() + 120
    while not _events(path, "epoch"):
        assert proc.poll() is None, (path / "stdout.log").read_text()
        assert time.monotonic() < deadline, "no epoch within the deadline"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert _wait(proc, timeout=60) == 0
    status = _final_status(path)
    assert status["status"] == "stopped"
    stops = [e for e in _events(path, "checkpoint") if e["kind"] == "stop"]
    assert stops and stops[-1]["path"] == "checkpoints/last.pt"
    ckpt = load_checkpoint(path / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == status["epoch"] >= 1
    # resume to a near end: the run continues from the stop checkpoint and completes
    stopped_epoch = int(ckpt["epoch"])
    write_config(path, {**ckpt["config"], "epochs": stopped_epoch + 2}, {"name": "run2"})
    assert _wait(_spawn(path, "--resume")) == 0
    assert _final_status(path)["status"] == "completed"
    assert _events(path, "start")[-1]["resumed_from_epoch"] == stopped_epoch
    assert [e["epoch"] for e in _events(path, "epoch")][-2:] == [
        stopped_epoch + 1,
        stopped_epoch + 2,
    ]


def test_worker_diverged(tmp_path: Path, h5_sets: tuple[Path, Path]) -> None:
    path = _make_run(tmp_path, "run3", h5_sets, epochs=3, learning_rate=1e30, optimizer="sgd")
    assert _wait(_spawn(path)) == 2
    status = _final_status(path)
    assert status["status"] == "diverged" and status["epoch"] == 1
    assert status["task"] in status["error"] and "epoch 1" in status["error"]


def test_worker_missing_data_fails_cleanly(tmp_path: Path, h5_sets: tuple[Path, Path]) -> None:
    path = _make_run(tmp_path, "run4", (tmp_path / "nope.h5", h5_sets[1]), epochs=2)
    assert _wait(_spawn(path)) == 2
    status = _final_status(path)
    assert status["status"] == "failed" and "nope.h5" in status["error"]
    assert "Traceback" not in (path / "stdout.log").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_worker_cuda_without_cuda(tmp_path: Path, h5_sets: tuple[Path, Path]) -> None:
    path = _make_run(tmp_path, "run5", h5_sets, epochs=2, device="cuda")
    assert _wait(_spawn(path)) == 2
    status = _final_status(path)
    assert status["status"] == "failed" and "CUDA" in status["error"]


def test_worker_exception_keeps_traceback(
    tmp_path: Path, h5_sets: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rhea_engine.train as train_module

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("something deep went wrong")

    monkeypatch.setattr(train_module, "train", broken)
    path = _make_run(tmp_path, "run6", h5_sets, epochs=2)
    assert worker.run_worker(path) == 1
    status = _final_status(path)
    assert status["status"] == "failed"
    assert "ZeroDivisionError: something deep went wrong" in status["error"]
    assert "Traceback" in status["traceback"] and "broken" in status["traceback"]
    assert (
        signal.getsignal(signal.SIGTERM) is not None
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )

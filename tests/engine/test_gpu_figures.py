"""GPU figures: sampled through NVML by the worker's monitor, written as events, ingested.

There is no GPU here: a fake `pynvml` module is put in front of the import in a child
process, which runs the real monitor against a real run directory. Without NVML (the
module missing) or for a CPU device nothing is sampled and nothing fails.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rhea_engine.runs.gpu import GpuSampler, physical_gpu, start_monitor
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter, read_events
from rhea_engine.runs.store import Store

FAKE_NVML = textwrap.dedent(
    """
    import os
    from types import SimpleNamespace

    opened = []

    class NVMLError(Exception):
        pass

    def nvmlInit():
        pass

    def nvmlShutdown():
        pass

    def nvmlDeviceGetHandleByIndex(index):
        if index > 3:
            raise NVMLError("Invalid Argument")
        opened.append(index)
        return ("gpu", index)

    def nvmlDeviceGetHandleByUUID(uuid):
        return ("gpu", uuid)

    def nvmlDeviceGetName(handle):
        return b"NVIDIA H200"

    def nvmlDeviceGetUtilizationRates(handle):
        return SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetMemoryInfo(handle):
        return SimpleNamespace(used=40_000_000_000, total=141_000_000_000, free=101_000_000_000)

    def nvmlDeviceGetComputeRunningProcesses(handle):
        return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=12_300_000_000),
                SimpleNamespace(pid=1, usedGpuMemory=1)]
    """
)

CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])  # the fake pynvml
    from rhea_engine.runs.gpu import start_monitor
    from rhea_engine.runs.rundir import RunWriter

    with RunWriter(sys.argv[1]) as writer:
        monitor = start_monitor("cuda:1", writer.gpu, 0.05)
        assert monitor is not None
        time.sleep(0.3)
        monitor.stop()
        import pynvml
        print("opened", pynvml.opened)
    """
)


def test_a_worker_records_its_gpu_and_the_store_keeps_the_last_figures(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_NVML)
    store = Store(tmp_path / "home")
    row = store.create_run({"epochs": 2}, name="on-gpu", status="running")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(row.path), str(fake)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"CUDA_VISIBLE_DEVICES": "2,3", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "opened [3]" in done.stdout  # torch's cuda:1 is the physical GPU 3
    events = [e for e in read_events(row.path).events if e["type"] == "gpu"]
    assert len(events) >= 2
    device = events[-1]["devices"][0]
    assert device["utilization"] == 87.0 and device["memory_total"] == 141e9
    assert device["process_memory"] == 12.3e9 and device["name"] == "NVIDIA H200"
    with RunWriter(row.path) as writer:
        writer.start(device="cuda:1", total_epochs=2, data=[], pid=1, host="elsewhere")
    refresh(store)
    gpu = store.get_run("on-gpu").gpu
    store.close()
    assert gpu is not None and gpu["devices"][0]["utilization"] == 87.0
    assert gpu["devices"][0]["index"] == 3


def test_without_nvml_or_on_the_cpu_nothing_is_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # "not installed"
    assert GpuSampler.open("cuda:0", visible="") is None
    assert start_monitor("cuda:0", lambda figures: None, 1.0) is None
    assert start_monitor("cpu", lambda figures: None, 1.0) is None


def test_torch_devices_map_to_physical_gpus() -> None:
    assert physical_gpu("cpu", None) is None
    assert physical_gpu("cuda", None) == 0
    assert physical_gpu("cuda:1", "") == 1
    assert physical_gpu("cuda:1", "4,6") == 6
    assert physical_gpu("cuda:0", "GPU-8d2f") == "GPU-8d2f"
    assert physical_gpu("cuda:2", "0,1") is None


def test_nvml_installed_without_a_gpu_gives_no_figures_and_no_error() -> None:
    """The real nvidia-ml-py (the `gpu` extra) on a machine without NVIDIA's driver."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        assert GpuSampler.open("cuda:0", visible="") is None
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVIDIA's driver")
